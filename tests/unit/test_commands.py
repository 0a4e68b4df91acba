"""Command digests: canonical JSON, written by orjson, byte for byte the stdlib's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from settlement.core.commands import Command, canonical_json


def stdlib_canonical(document: Any) -> bytes:
    """The reference form: sorted keys, no whitespace, UTF-8, `str` of the rest."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


# What a decoded record's data can hold: JSON values, non-integers as Decimal.
json_values = st.recursive(
    st.none() | st.booleans() | st.text() | st.integers(min_value=-2**63, max_value=2**63 - 1)
    | st.integers(min_value=2**64, max_value=2**80)  # beyond orjson: the stdlib writes these
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(data=st.dictionaries(st.text(), json_values, max_size=6))
def test_canonical_json_is_the_stdlib_form(data: dict[str, Any]) -> None:
    document = {"type": "task.funded", "time": "2026-11-26T09:00:00+00:00", "data": data}
    assert canonical_json(document) == stdlib_canonical(document)


def test_digest_depends_on_content_not_key_order() -> None:
    at = datetime(2026, 11, 26, 9, tzinfo=UTC)
    one = Command.create("e-1", "task.funded", at, {"job_id": "j", "amount": Decimal("1.50")})
    two = Command.create("e-1", "task.funded", at, {"amount": Decimal("1.50"), "job_id": "j"})
    other = Command.create("e-1", "task.funded", at, {"job_id": "j", "amount": Decimal("1.5")})
    assert one.digest == two.digest != other.digest
