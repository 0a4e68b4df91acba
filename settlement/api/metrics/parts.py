"""The processes of `settlement run`, from the heartbeats they write: each part's
heartbeat and progress ages and its lag, the last timer pass, and the
supervisor's children (backing off, restarts). No heartbeats, no samples."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from settlement.api.metrics.catalogue import gauge
from settlement.api.readiness import SUPERVISOR, TIMERS, children, kind_of
from settlement.infra.heartbeats import Heartbeat


def parts(beats: list[Heartbeat]) -> Iterator[Metric]:
    labels = ["part", "kind"]
    beat_age = gauge("settlement_part_heartbeat_age_seconds", labels)
    progress_age = gauge("settlement_part_progress_age_seconds", labels)
    lag = gauge("settlement_part_lag", labels)
    timer_pass = gauge("settlement_timers_last_pass_age_seconds")
    backing_off = gauge("settlement_supervisor_child_backing_off", ["child"])
    restarts = gauge("settlement_supervisor_child_restarts", ["child"])
    for beat in beats:
        kind = kind_of(beat.part)
        names = [beat.part, kind]
        beat_age.add_metric(names, max(beat.beat_age_s, 0.0))
        if beat.progress_age_s is not None:
            progress_age.add_metric(names, max(beat.progress_age_s, 0.0))
            if kind == TIMERS:
                timer_pass.add_metric([], max(beat.progress_age_s, 0.0))
        if beat.lag is not None:
            lag.add_metric(names, beat.lag)
        if kind == SUPERVISOR:
            for child in children(beat):
                backing_off.add_metric([child.name], int(child.status == "backing_off"))
                restarts.add_metric([child.name], child.restarts)
    yield from (beat_age, progress_age, lag, timer_pass, backing_off, restarts)
