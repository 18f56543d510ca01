"""Entry point of ``python -m ktrdr_sim.live``."""

from ktrdr_sim.live.run import main

raise SystemExit(main())
