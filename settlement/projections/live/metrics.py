"""Projector metrics (SPEC §7 `/metrics`, served by a later issue): the highest
event position applied, the lag behind the event store and the rate of events.

Time is passed in (`time.monotonic()` by the projector), so the arithmetic is
testable as it is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

RATE_WINDOW_S = 10.0


@dataclass
class ProjectorMetrics:
    projector: str
    position: int = 0  # the highest event position applied
    applied: int = 0  # events applied by this process
    duplicates: int = 0  # events delivered again and skipped
    batches: int = 0
    first_batch_at: float = 0.0  # when the first batch arrived (for throughput figures)
    last_commit_at: float = 0.0  # when the last batch was stored
    _recent: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    def arrived(self, now: float) -> None:
        """A batch arrived (the clock of `throughput` starts with the first)."""
        self.first_batch_at = self.first_batch_at or now

    def record(self, *, applied: int, duplicates: int, max_position: int, now: float) -> None:
        self.batches += 1
        self.last_commit_at = now
        self.applied += applied
        self.duplicates += duplicates
        self.position = max(self.position, max_position)
        self._recent.append((now, applied))
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
            self._recent.popleft()

    def events_per_s(self, now: float) -> float:
        """Events applied per second over the last `RATE_WINDOW_S` seconds."""
        recent = sum(n for at, n in self._recent if at >= now - RATE_WINDOW_S)
        return recent / RATE_WINDOW_S

    def throughput(self) -> float:
        """Events applied per second from the first batch's arrival to the last commit."""
        elapsed = self.last_commit_at - self.first_batch_at
        return self.applied / elapsed if elapsed > 0 else 0.0

    def lag(self, head: int | None) -> int:
        """Events stored but not applied yet, counted in positions (which may have gaps)."""
        return max((head or 0) - self.position, 0)

    def snapshot(self, head: int | None, now: float) -> dict[str, Any]:
        return {
            "projector": self.projector, "position": self.position, "head": head or 0,
            "lag": self.lag(head), "events_per_s": round(self.events_per_s(now), 1),
            "applied": self.applied, "duplicates": self.duplicates, "batches": self.batches,
        }
