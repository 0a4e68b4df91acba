"""What a relay has done so far: the figures its metrics and progress logs show."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RelayStats:
    published: int = 0  # records acknowledged by the broker (repeats included)
    skipped: int = 0  # notifications that are not settlement events
    batches: int = 0
    position: int = 0  # the last position stored as published
    head: int = 0  # the event store's last position, when last looked at
    first_batch_at: float = 0.0  # time.perf_counter() when the first batch arrived
    last_batch_at: float = 0.0  # time.perf_counter() after the last stored position

    @property
    def lag(self) -> int:
        """Events stored but not yet published (as of the last look at the head)."""
        return max(0, self.head - self.position)

    @property
    def events_per_s(self) -> float:
        """Records published per second, from the first batch to the last."""
        return rate(self.published, self.last_batch_at - self.first_batch_at)

    def as_dict(self) -> dict[str, int | float]:
        return {"published": self.published, "skipped": self.skipped, "batches": self.batches,
                "position": self.position, "head": self.head, "lag": self.lag,
                "events_per_s": round(self.events_per_s, 1)}


def rate(count: int, seconds: float) -> float:
    """`count` per second over `seconds`; 0 when no time has passed."""
    return count / seconds if seconds > 0 else 0.0
