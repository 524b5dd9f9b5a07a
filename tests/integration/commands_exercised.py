#!/usr/bin/env python3
"""Counts the distinct Redis commands the integration tests made Redis run.

Run the suite with CORRAL_IT_CMDSTATS=DIR (the harness then saves each redis-server's
INFO commandstats in DIR before stopping it), then: commands_exercised.py DIR
"""
import os
import re
import sys


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    seen = {}
    for name in os.listdir(sys.argv[1]):
        with open(os.path.join(sys.argv[1], name), encoding="utf-8", errors="replace") as f:
            for m in re.finditer(r"^cmdstat_([^:]+):calls=(\d+)", f.read(), re.M):
                seen[m.group(1)] = seen.get(m.group(1), 0) + int(m.group(2))
    top = sorted({k.split("|")[0] for k in seen})
    print(f"{len(seen)} commands and subcommands ({len(top)} top-level) ran in Redis")
    print(" ".join(sorted(seen)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
