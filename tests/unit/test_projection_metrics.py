"""Projector metrics: position, lag behind the event store, events per second."""

from __future__ import annotations

from settlement.projections.live.metrics import RATE_WINDOW_S, ProjectorMetrics


def test_position_is_the_highest_applied_and_lag_the_distance_to_the_store() -> None:
    metrics = ProjectorMetrics("p")
    metrics.record(applied=10, duplicates=0, max_position=40, now=100.0)
    metrics.record(applied=5, duplicates=3, max_position=25, now=101.0)  # another partition
    assert (metrics.position, metrics.applied, metrics.duplicates) == (40, 15, 3)
    assert metrics.lag(head=55) == 15
    assert metrics.lag(head=None) == 0 and metrics.lag(head=30) == 0


def test_rate_counts_the_recent_window_only() -> None:
    metrics = ProjectorMetrics("p")
    metrics.record(applied=1_000, duplicates=0, max_position=1_000, now=0.0)
    metrics.record(applied=2_000, duplicates=0, max_position=3_000, now=5.0)
    assert metrics.events_per_s(now=5.0) == 3_000 / RATE_WINDOW_S
    assert metrics.events_per_s(now=12.0) == 2_000 / RATE_WINDOW_S
    assert metrics.events_per_s(now=16.0) == 0


def test_snapshot_is_a_plain_dict() -> None:
    metrics = ProjectorMetrics("settlement-projections")
    metrics.record(applied=20, duplicates=1, max_position=20, now=1.0)
    assert metrics.snapshot(head=26, now=1.0) == {
        "projector": "settlement-projections", "position": 20, "head": 26, "lag": 6,
        "events_per_s": 2.0, "applied": 20, "duplicates": 1, "batches": 1,
    }


def test_throughput_runs_from_the_first_arrival_to_the_last_commit() -> None:
    metrics = ProjectorMetrics("p")
    assert metrics.throughput() == 0.0
    metrics.arrived(10.0)
    metrics.record(applied=500, duplicates=0, max_position=500, now=10.5)
    metrics.arrived(10.6)
    metrics.record(applied=1_500, duplicates=0, max_position=2_000, now=12.0)
    assert metrics.throughput() == 2_000 / 2.0
