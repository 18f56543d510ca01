"""The floor under any engine on opdiag's trace model: reading a file into it, nothing else.

``opdiag diagnose`` and ``opdiag operations`` read their files exactly so (``read_file``, the
cyclic GC paused as the CLI pauses it) before any analysis. ``diagnose_bench`` runs this next
to them and jq: when reading alone takes a large part of jq's whole run, no faster engine over
this model meets a target below that part (issue 10).

    python -m bench.read_floor FILE
"""

from __future__ import annotations

import sys

from opdiag.gcpause import gc_paused
from opdiag.sources.readers import read_file


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.read_floor FILE", file=sys.stderr)
        return 2
    with gc_paused():
        traces = read_file(args[0])
        print(f"{len(traces)} traces, {sum(len(t.spans) for t in traces)} spans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
