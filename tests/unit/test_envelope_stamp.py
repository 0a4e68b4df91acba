"""`parse` keeps a published time's text as its `stamp` only where that text is what
`isoformat()` writes for it: the job views' times and the rebuild's COPY lines
are written from the stamp, so it must equal `time.isoformat()` for any text."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from settlement.projections.model.envelope import parse

_OFFSETS = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)),
                     st.integers(-23 * 60 - 59, 23 * 60 + 59))
_TIMES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                      timezones=_OFFSETS)


def _event(time: str) -> dict[str, Any]:
    return {"type": "settlement.task_funded", "time": time,
            "data": {"position": 1, "version": 2, "job_id": "j", "causation_id": "c"}}


@given(_TIMES)
def test_a_published_time_is_its_own_stamp(time: datetime) -> None:
    event = parse(_event(time.isoformat()))
    assert event.time == time and event.stamp == time.isoformat()


@given(_TIMES, st.sampled_from(["{d}T{t}.000000{o}", "{d} {t}{o}", "{d}T{t}Z", "{d}T{t}-00:00",
                                "{d}T{t}.{u:03d}{o}", "{d}T{t}{o}:00", "{d}T{t}{p}"]))
def test_any_other_text_of_a_time_is_stamped_as_isoformat_writes_it(time: datetime,
                                                                    shape: str) -> None:
    offset = time.isoformat()[-6:]
    text = shape.format(d=time.date().isoformat(), t=time.strftime("%H:%M:%S"), o=offset,
                        u=time.microsecond // 1000, p=offset.replace(":", ""))
    parsed = datetime.fromisoformat(text)
    assert parse(_event(text)).stamp == parsed.isoformat()


def test_the_shapes_that_look_published_but_are_not() -> None:
    for text, stamp in [("2026-01-05T00:00:13-00:00", "2026-01-05T00:00:13+00:00"),
                        ("2026-01-05T00:00:13.000000+09:00", "2026-01-05T00:00:13+09:00"),
                        ("2026-W02-1T00:00:13+09:00", "2026-01-05T00:00:13+09:00")]:
        assert parse(_event(text)).stamp == stamp
