"""No CSV cell a spreadsheet would run (SPEC §12): free text is neutralised,
numbers are left as numbers."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from settlement.api.render import to_csv
from settlement.documents.cells import safe


def test_formula_triggers_get_an_apostrophe() -> None:
    for text in ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe(text) == "'" + text


def test_numbers_and_plain_text_are_left_alone() -> None:
    for text in ("-1500", "-0.5", "1500", "株式会社テスト", "Acme", "", "'quoted"):
        assert safe(text) == text


@given(st.text())
def test_no_cell_starts_with_a_trigger(text: str) -> None:
    cell = safe(text)
    assert not cell.startswith(("=", "+", "@", "\t", "\r"))
    assert not cell.startswith("-") or cell.lstrip("-").replace(".", "", 1).isdigit()


def test_the_api_csv_escapes_names_but_not_amounts() -> None:
    body = to_csv(["name", "amount"], [{"name": "=cmd|' /C calc'!A0", "amount": "-1100"}])
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[1] == ["'=cmd|' /C calc'!A0", "-1100"]
