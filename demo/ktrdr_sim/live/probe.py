"""``python -m ktrdr_sim.live.probe URL``: exit 0 when URL answers 2xx (container healthchecks).

The slim image has no curl or wget; this keeps the compose healthchecks to one short command.
"""

from __future__ import annotations

import sys
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m ktrdr_sim.live.probe URL", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(argv[0], timeout=3) as resp:
            return 0 if 200 <= resp.status < 300 else 1
    except OSError as exc:
        print(f"{argv[0]}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
