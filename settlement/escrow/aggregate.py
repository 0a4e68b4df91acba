"""The escrow aggregate: one per marketplace job, for all three formats.

`Escrow` is `EscrowBase` (`base`: the state and the shared command steps) plus
one mixin of commands per format, disputes and timers. Commands (public
methods) validate in a documented order, compute every amount and emit one
event; events (see `events.py`) only assign. Time always comes in as an
argument: the domain never reads the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from settlement.escrow import events as ev
from settlement.escrow.base import escrow_id
from settlement.escrow.competition import CompetitionCommands
from settlement.escrow.dispute import DisputeCommands
from settlement.escrow.project import ProjectCommands
from settlement.escrow.task import TaskCommands
from settlement.escrow.timers import (
    AUTO_ACCEPT,
    AUTO_APPROVE,
    DEFAULT_AWARD,
    TimerAction,
    TimerCommands,
)

__all__ = ["Escrow", "escrow_id"]


class Escrow(ProjectCommands, CompetitionCommands, TaskCommands, DisputeCommands, TimerCommands):
    # Every opening event stores this class's topic (`originator_topic`,
    # `settlement.escrow.aggregate:Escrow`), so the class keeps this module and name.

    def run_timers(self, now: datetime) -> list[TimerAction]:
        """Apply every action due at `now` (`due_timers`); returns what was applied.
        Here, not in `timers`: an action is a command of any format."""
        due = self.due_timers(now)
        for action in due:
            cause = action.causation_id(self.job_id)
            if action.action == AUTO_ACCEPT:
                self.accept_milestone(action.item_id, causation_id=cause, at=now, automatic=True)
            elif action.action == AUTO_APPROVE:
                self.approve_submission(action.item_id, causation_id=cause, at=now, automatic=True)
            elif action.action == DEFAULT_AWARD:
                self.award(self.guaranteed_split(), causation_id=cause, at=now, automatic=True)
            else:
                self._emit(ev.CompetitionRefunded, causation_id=cause, at=now,
                           reason=action.action, refund=self._refund("prize", self.held))
        return due

    def state_digest(self) -> dict[str, Any]:
        """Everything observable about the escrow, for comparing live and replayed."""
        return {
            "id": str(self.id), "version": self.version, "job_id": self.job_id,
            "format": self.format, "state": self.state, "client_id": self.client_id,
            "funded": self.funded, "held": self.held, "released": self.released,
            "refunded": self.refunded, "fees": self.fees, "withheld": self.withheld,
            "items": {k: vars(v).copy() for k, v in self.items.items()},
            "disputes": dict(self.disputes),
            "released_to": dict(self.released_to),
        }
