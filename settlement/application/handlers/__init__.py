"""One named handler per marketplace event type: parse the data, call the escrow.

The handlers live by job format (`project`, `competition`, `task`, `dispute`);
the two tables below map each event type to its handler. An opener builds the
escrow of a new job; a handler changes the escrow of an existing one. Payout
results (`payout.*`) are not escrow commands: `settlement.payouts` takes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from settlement.application.handlers import competition, dispute, project, task
from settlement.core.commands import Command
from settlement.core.errors import NotFound, Rejected
from settlement.core.fees import FeePlan
from settlement.escrow import Escrow

Opener = Callable[[Command, Mapping[str, FeePlan]], Escrow]
Handler = Callable[[Escrow, Command], None]

OPENERS: dict[str, Opener] = {
    "project.contracted": project.contract_project,
    "competition.opened": competition.open_competition,
    "task.opened": task.open_task,
}

COMMAND_HANDLERS: dict[str, Handler] = {
    "project.milestone_added": project.add_milestone,
    "project.milestone_funded": project.fund_milestone,
    "project.milestone_delivered": project.deliver_milestone,
    "project.revision_requested": project.request_revision,
    "project.milestone_accepted": project.accept_milestone,
    "project.milestone_cancelled": project.cancel_milestone,
    "competition.funded": competition.fund_competition,
    "competition.entry_submitted": competition.submit_entry,
    "competition.awarded": competition.award,
    "competition.cancelled": competition.cancel_competition,
    "task.funded": task.fund_task,
    "task.submission_received": task.receive_submission,
    "task.submission_approved": task.approve_submission,
    "task.submission_rejected": task.reject_submission,
    "task.closed": task.close_task,
    "dispute.opened": dispute.open_dispute,
    "dispute.resolved": dispute.resolve_dispute,
}


def apply(escrow: Escrow | None, cmd: Command, plans: Mapping[str, FeePlan]) -> Escrow:
    """Apply `cmd` to `escrow` (or open it); returns the escrow with new pending events.
    Opening an existing job is `job_exists`, an unknown type `unknown_type`, and
    anything else on a missing job `unknown_job`, checked in that order."""
    opener = OPENERS.get(cmd.type)
    if opener is not None:
        if escrow is not None:
            raise Rejected(f"job {cmd.job_id} already exists", "job_exists")
        return opener(cmd, plans)
    handler = COMMAND_HANDLERS.get(cmd.type)
    if handler is None:
        raise Rejected(f"unknown event type {cmd.type!r}", "unknown_type")
    if escrow is None:
        raise NotFound(f"unknown job {cmd.job_id}", "unknown_job")
    handler(escrow, cmd)
    return escrow
