"""The one parser of instants given as text (events, command-line options, API
parameters): ISO 8601 with a UTC offset. Each caller turns `NotAnInstant` into
its own kind of refusal (a coded rejection, an argparse error, a 400)."""

from __future__ import annotations

from datetime import datetime


class NotAnInstant(ValueError):
    """`text` is no ISO 8601 time, or (`missing_offset`) a time without a UTC offset."""

    def __init__(self, message: str, *, missing_offset: bool = False) -> None:
        super().__init__(message)
        self.missing_offset = missing_offset


def parse_instant(text: str) -> datetime:
    """The instant `text` names (`2026-11-26T09:00:00Z`, `…+09:00`); a time without
    an offset is refused, since it names no instant."""
    try:
        value = datetime.fromisoformat(text)
    except (ValueError, OverflowError) as exc:
        raise NotAnInstant(f"not an ISO 8601 time: {text[:64]!r}") from exc
    if value.tzinfo is None:
        raise NotAnInstant(f"no UTC offset (e.g. Z or +09:00): {text[:64]!r}",
                           missing_offset=True)
    return value
