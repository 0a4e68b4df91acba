"""`GET /readyz`: whether the API can answer, and how each part of `settlement run`
is doing, judged from what `queries.progress` read.

The HTTP status says whether *this API* can serve: 200 when PostgreSQL answers
and the projections schema exists, else 503 (`database_unavailable`,
`projections_unavailable`). A stalled part does not make it 503: every replica
reads the same database, so a load balancer would take them all out of service
at once for a stall that stale-but-correct figures survive. The body says what
is stalled instead: `status` is `degraded` and `problems` names each part with
its ages and lag.

A part is stalled when its heartbeat is older than HEARTBEAT_STALE_S (it died or
hangs), or it is behind (lag > 0) and made no progress for PROGRESS_STALE_S; the
timer loop when its last pass is older than TIMER_PASS_STALE_S; a relay when its
stored position has not moved for PROGRESS_STALE_S with events waiting (this
needs no heartbeat); a supervised child while the supervisor backs off
restarting it. No heartbeats at all (the API alone, or processes that write
none) means nothing to judge: only the positions are reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from settlement.api.queries.progress import Progress
from settlement.infra.heartbeats import Heartbeat

HEARTBEAT_STALE_S = 30.0  # parts beat every few seconds: several beats missed
PROGRESS_STALE_S = 120.0  # behind and not moving for this long: stuck
TIMER_PASS_STALE_S = 300.0  # five passes missed at the default 60 s interval
INGEST, RELAY, PROJECTOR, TIMERS, SUPERVISOR, OTHER = (
    "ingest", "relay", "projector", "timers", "supervisor", "other")
# A part's heartbeat name → its kind: input consumers and projectors are named by
# their Kafka client id (`settlement-ingest-1`, `settlement-projector-2`).
_KIND_PREFIXES = (("settlement-ingest", INGEST), ("ingest", INGEST),
                  ("settlement-projector", PROJECTOR), ("project", PROJECTOR))


def kind_of(part: str) -> str:
    if part in (RELAY, TIMERS, SUPERVISOR):
        return part
    return next((kind for prefix, kind in _KIND_PREFIXES if part.startswith(prefix)), OTHER)


@dataclass(frozen=True)
class Child:
    name: str
    status: str  # "running" or "backing_off"
    restarts: int
    restart_delay_s: float


def children(beat: Heartbeat) -> list[Child]:
    """The supervisor's children from its heartbeat's detail (tolerant of a shape
    it does not know: a part written by another version must not break probes)."""
    found = beat.detail.get("children") if isinstance(beat.detail, dict) else None
    if not isinstance(found, dict):
        return []
    out = []
    for name, state in sorted(found.items()):
        state = state if isinstance(state, dict) else {}
        out.append(Child(str(name), str(state.get("status", "unknown")),
                         _number(state.get("restarts"), int),
                         _number(state.get("restart_delay_s"), float)))
    return out


def part_problem(beat: Heartbeat) -> str | None:
    """Why `beat`'s part counts as stalled, or None."""
    if beat.beat_age_s > HEARTBEAT_STALE_S:
        return f"no heartbeat for {beat.beat_age_s:.0f} s"
    progress_age = beat.progress_age_s
    kind = kind_of(beat.part)
    if kind == TIMERS:
        if progress_age is None:
            return "no timer pass recorded"
        if progress_age > TIMER_PASS_STALE_S:
            return f"no timer pass for {progress_age:.0f} s"
    if beat.lag and beat.lag > 0 and (progress_age is None or progress_age > PROGRESS_STALE_S):
        since = "ever" if progress_age is None else f"for {progress_age:.0f} s"
        return f"{beat.lag} behind with no progress {since}"
    if kind == SUPERVISOR:
        backing_off = [c.name for c in children(beat) if c.status == "backing_off"]
        if backing_off:
            return f"backing off restarting {', '.join(backing_off)}"
    return None


def report(progress: Progress) -> dict[str, Any]:
    """The body of a 200 `/readyz`."""
    head = progress.head
    parts, part_problems = _parts(progress.heartbeats)
    relays, relay_problems = _relays(progress)
    projectors: list[dict[str, Any]] = [
        {"projector": p.projector, "position": p.position, "lag": max(head - p.position, 0)}
        for p in progress.projectors]
    problems = part_problems + relay_problems
    ingest_lags = [b.lag for b in progress.heartbeats
                   if kind_of(b.part) == INGEST and b.lag is not None]
    by_kind = {kind_of(beat.part): beat for beat in progress.heartbeats}
    timers, supervisor = by_kind.get(TIMERS), by_kind.get(SUPERVISOR)
    return {
        "status": "degraded" if problems else "ok", "problems": problems, "head": head,
        "ingest_lag": sum(ingest_lags) if ingest_lags else None,
        "relay_lag": max((int(r["lag"]) for r in relays), default=None),
        "projector_lag": max((int(p["lag"]) for p in projectors), default=None),
        "last_timer_pass_age_s": _age(timers.progress_age_s) if timers else None,
        "relays": relays, "projectors": projectors, "parts": parts,
        "children": [asdict(c) for c in children(supervisor)] if supervisor else [],
    }


def _parts(beats: list[Heartbeat]) -> tuple[list[dict[str, Any]], list[str]]:
    rows, problems = [], []
    for beat in beats:
        problem = part_problem(beat)
        if problem:
            problems.append(f"{beat.part}: {problem}")
        rows.append({"part": beat.part, "kind": kind_of(beat.part), "pid": beat.pid,
                     "beat_age_s": _age(beat.beat_age_s),
                     "progress_age_s": _age(beat.progress_age_s), "lag": beat.lag,
                     "problem": problem})
    return rows, problems


def _relays(progress: Progress) -> tuple[list[dict[str, Any]], list[str]]:
    """Judged from the stored positions alone: events waiting, the position still."""
    rows, problems = [], []
    for relay in progress.relays:
        lag = max(progress.head - relay.position, 0)
        if lag > 0 and relay.progress_age_s > PROGRESS_STALE_S:
            problems.append(f"relay {relay.relay}: {lag} events not published, "
                            f"no progress for {relay.progress_age_s:.0f} s")
        rows.append({"relay": relay.relay, "position": relay.position, "lag": lag,
                     "progress_age_s": _age(relay.progress_age_s)})
    return rows, problems


def _age(seconds: float | None) -> float | None:
    return None if seconds is None else round(max(seconds, 0.0), 3)


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    return kind(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
