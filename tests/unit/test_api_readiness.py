"""What `/readyz` makes of the parts' progress (pure: no database), and the
fail-fast rule the API follows while the database is away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from settlement.api.availability import Availability, Unreachable
from settlement.api.queries.progress import Progress, ProjectorProgress, RelayProgress
from settlement.api.readiness import (
    HEARTBEAT_STALE_S,
    PROGRESS_STALE_S,
    TIMER_PASS_STALE_S,
    kind_of,
    report,
)
from settlement.infra.heartbeats import Heartbeat

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def beat(part: str, beat_age: float = 1.0, progress_age: float | None = 1.0,
         lag: int | None = None, detail: dict[str, Any] | None = None) -> Heartbeat:
    progress_at = None if progress_age is None else NOW - timedelta(seconds=progress_age)
    return Heartbeat(part, 42, NOW - timedelta(seconds=beat_age), progress_at, lag,
                     detail or {}, NOW)


def progress(*beats: Heartbeat, relay_age: float = 1.0, relay_position: int = 100,
             projector_position: int = 100) -> Progress:
    return Progress(100, [RelayProgress("settlement", relay_position, relay_age)],
                    [ProjectorProgress("settlement-projections", projector_position)],
                    list(beats))


@pytest.mark.parametrize(("part", "kind"), [
    ("settlement-ingest", "ingest"), ("settlement-ingest-2", "ingest"),
    ("settlement-projector-1", "projector"), ("relay", "relay"), ("timers", "timers"),
    ("supervisor", "supervisor"), ("something-else", "other")])
def test_parts_are_known_by_their_names(part: str, kind: str) -> None:
    assert kind_of(part) == kind


def test_everything_moving_is_ok_and_reports_each_lag() -> None:
    body = report(progress(beat("settlement-ingest-1", lag=3), beat("settlement-ingest-2", lag=4),
                           beat("relay", lag=0), beat("settlement-projector-1", lag=2),
                           beat("timers", progress_age=30.0), relay_position=95,
                           projector_position=90))
    assert body["status"] == "ok" and body["problems"] == []
    assert (body["ingest_lag"], body["relay_lag"], body["projector_lag"]) == (7, 5, 10)
    assert body["last_timer_pass_age_s"] == 30.0
    assert [p["kind"] for p in body["parts"]] == ["ingest", "ingest", "relay", "projector",
                                                  "timers"]


def test_no_heartbeats_means_nothing_to_judge() -> None:
    body = report(Progress(0, [], [], []))
    assert body["status"] == "ok" and body["parts"] == [] and body["children"] == []
    assert body["ingest_lag"] is None and body["last_timer_pass_age_s"] is None


@pytest.mark.parametrize(("beats", "relay_age", "problem"), [
    ([beat("relay", beat_age=HEARTBEAT_STALE_S + 5)], 1.0, "relay: no heartbeat for 35 s"),
    ([beat("settlement-ingest", lag=50, progress_age=PROGRESS_STALE_S + 1)], 1.0,
     "settlement-ingest: 50 behind with no progress for 121 s"),
    ([beat("settlement-projector-1", lag=5, progress_age=None)], 1.0,
     "settlement-projector-1: 5 behind with no progress ever"),
    ([beat("timers", progress_age=TIMER_PASS_STALE_S + 1)], 1.0,
     "timers: no timer pass for 301 s"),
    ([beat("timers", progress_age=None)], 1.0, "timers: no timer pass recorded"),
    ([beat("supervisor", detail={"children": {
        "relay": {"status": "backing_off", "restarts": 3, "restart_delay_s": 4.0},
        "timers": {"status": "running", "restarts": 0, "restart_delay_s": 0}}})], 1.0,
     "supervisor: backing off restarting relay"),
    # The relay's own position, without any heartbeat: events wait, nothing moves.
    ([], PROGRESS_STALE_S + 1, "relay settlement: 10 events not published, "
                               "no progress for 121 s"),
])
def test_a_stalled_part_degrades_the_status_and_says_why(
        beats: list[Heartbeat], relay_age: float, problem: str) -> None:
    body = report(progress(*beats, relay_age=relay_age, relay_position=90))
    assert body["status"] == "degraded"
    assert body["problems"] == [problem]


def test_behind_but_moving_or_idle_is_not_stalled() -> None:
    body = report(progress(beat("settlement-ingest", lag=10_000, progress_age=2.0),
                           beat("relay", lag=0, progress_age=10_000.0),
                           relay_age=10_000.0, relay_position=100))
    assert body["status"] == "ok", body["problems"]


def test_the_supervisors_children_are_listed_whatever_the_detail_holds() -> None:
    body = report(progress(beat("supervisor", detail={"children": {
        "ingest": {"status": "running", "restarts": 2, "restart_delay_s": 0.5},
        "odd": "not a mapping", "api": {"restarts": "many"}}})))
    assert body["children"] == [
        {"name": "api", "status": "unknown", "restarts": 0, "restart_delay_s": 0},
        {"name": "ingest", "status": "running", "restarts": 2, "restart_delay_s": 0.5},
        {"name": "odd", "status": "unknown", "restarts": 0, "restart_delay_s": 0}]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_after_a_failure_requests_fail_fast_then_one_probes() -> None:
    clock = Clock()
    availability = Availability(hold_s=2.0, clock=clock)
    availability.admit()  # nothing known: every request tries
    availability.down()
    with pytest.raises(Unreachable):
        availability.admit()
    clock.now = 2.5
    availability.admit()  # this request probes ...
    with pytest.raises(Unreachable):
        availability.admit()  # ... the others keep failing fast meanwhile
    availability.down()  # the probe failed: hold again
    clock.now = 3.0
    with pytest.raises(Unreachable):
        availability.admit()
    clock.now = 5.0
    availability.admit()
    availability.up()  # the probe got a connection: everyone may try
    availability.admit()
    availability.admit()
