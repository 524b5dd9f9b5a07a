#!/usr/bin/env python3
"""Checks that each module includes only the modules it may use (the module map of
docs/contributing.md), so a wrong-way dependency fails CI even where CMake's link graph would
let it through (every library shares the repository root as include directory).

    tools/check_layers.py        # exit 0, or 1 with one line per offending #include

The same table is what each folder's CMakeLists.txt links; keep them together.
"""

from __future__ import annotations

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# module folder -> modules its code may include (besides itself).
ALLOWED: dict[str, set[str]] = {
    "commands": set(),
    "proxy/codec": set(),
    "config": set(),
    "proxy/tls": {"config"},
    "policies": {"config", "commands", "proxy/codec"},
    "proxy/loop": {"policies"},
    "proxy/upstream": {"config", "policies", "proxy/codec", "proxy/loop", "proxy/tls"},
    "proxy/origin": {"config", "policies", "proxy/tls"},
    "proxy/sentinel": {"config", "proxy/codec", "proxy/loop", "proxy/tls", "proxy/upstream"},
    "proxy/cluster": {"commands", "proxy/codec"},
    "proxy/nearcache": {"proxy/codec"},
    "proxy/wiring": {"config", "policies", "proxy/loop", "proxy/upstream", "proxy/origin"},
    "proxy/net": {"config", "commands", "policies", "proxy/codec", "proxy/loop",
                  "proxy/tls", "proxy/upstream", "proxy/wiring", "proxy/sentinel",
                  "proxy/cluster", "proxy/nearcache"},
    "proxy/admin": {"config", "commands", "policies", "proxy/loop", "proxy/net", "proxy/tls",
                    "proxy/sentinel"},
    "doctor": {"config", "policies", "commands", "proxy/tls"},
    "cmd/corral": {"config", "proxy/admin", "proxy/loop", "proxy/net", "proxy/tls",
                   "proxy/sentinel", "doctor"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(path: str) -> str | None:
    """The module a repository-relative path belongs to (longest folder match)."""
    best = None
    for m in ALLOWED:
        if path == m or path.startswith(m + "/"):
            if best is None or len(m) > len(best):
                best = m
    return best


def main() -> int:
    bad = []
    checked = 0
    for module in sorted(ALLOWED):
        folder = os.path.join(ROOT, module)
        for dirpath, _, files in os.walk(folder):
            for name in sorted(files):
                if not name.endswith((".h", ".cc")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, ROOT)
                if module_of(rel) != module:
                    continue  # a nested module is checked on its own
                checked += 1
                with open(path, encoding="utf-8") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = module_of(m.group(1))
                        if target is None or target == module:
                            continue
                        if target not in ALLOWED[module]:
                            bad.append(f"{rel}:{lineno}: {module} must not include {m.group(1)} "
                                       f"({target})")
    for b in bad:
        print(b)
    print(f"check_layers: {checked} files, {len(bad)} wrong-way includes", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
