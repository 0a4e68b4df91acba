"""Failpoints: kill the process at a named point, for crash tests of real processes.

`SETTLEMENT_FAILPOINTS="ingest.after_db_commit=3"` makes the third pass through
that point end the process at once (like `kill -9`: no clean-up, no flush).
Unset in production; costs one dict lookup per pass.
"""

from __future__ import annotations

import os
from collections import Counter

_PLAN: dict[str, int] = {}
for _entry in filter(None, os.environ.get("SETTLEMENT_FAILPOINTS", "").split(",")):
    _name, _, _count = _entry.partition("=")
    _PLAN[_name.strip()] = int(_count or "1")
_passes: Counter[str] = Counter()
KILLED_EXIT_CODE = 137


def hit(name: str) -> None:
    if name in _PLAN:
        _passes[name] += 1
        if _passes[name] >= _PLAN[name]:
            os._exit(KILLED_EXIT_CODE)
