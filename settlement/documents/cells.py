"""CSV cells a spreadsheet will not run (SPEC §12, formula injection).

A cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return,
which some spreadsheets skip before looking) is read as a formula; a party's
name is free text, so such a cell gets a leading apostrophe, which spreadsheets
show as text and do not display. A plain number (`-1500`, `-0.5`) is left as it
is: a negative amount is data, not a formula, and finance sums it.
"""

from __future__ import annotations

import re

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def safe(text: str) -> str:
    """`text` as a CSV cell no spreadsheet evaluates."""
    if text.startswith(_TRIGGERS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text
