"""One small handler per marketplace event type: parse the data, call the escrow.

A handler gets the escrow of the command's job (None if it does not exist yet)
and returns the escrow it changed. Opening an existing job is `job_exists`;
anything else on a missing job is `unknown_job`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from settlement.core import commands as c
from settlement.core.errors import InvalidInput, NotFound, Rejected
from settlement.core.fees import FeePlan
from settlement.escrow import Escrow

Handler = Callable[[Escrow, c.Command], None]
Opener = Callable[[c.Command, Mapping[str, FeePlan]], Escrow]


def _plan(data: Mapping[str, Any], plans: Mapping[str, FeePlan]) -> FeePlan:
    name = c.required(data, "fee_plan")
    if name not in plans:
        raise Rejected(f"unknown fee plan {name!r}", "unknown_fee_plan")
    return plans[name]


def _opening(cmd: c.Command, plans: Mapping[str, FeePlan]) -> dict[str, Any]:
    d = cmd.data
    return {
        "job_id": cmd.job_id, "client_id": c.ident(d, "client_id"), "plan": _plan(d, plans),
        "withholding": c.boolean(d, "withholding", False), "terms": c.terms(d),
        "causation_id": cmd.command_id, "at": cmd.time,
    }


def project_contracted(cmd: c.Command, plans: Mapping[str, FeePlan]) -> Escrow:
    opening = _opening(cmd, plans)
    currency = opening["plan"].currency
    raw = c.required(cmd.data, "milestones")
    if not isinstance(raw, list):
        raise InvalidInput("milestones must be a list", "invalid_field")
    milestones = [(c.ident(m, "milestone_id"), c.amount(m, "amount"), c.tax(m, currency))
                  for m in raw]
    return Escrow.contract_project(
        worker_id=c.ident(cmd.data, "worker_id"), milestones=milestones,
        inspection_days=c.integer(cmd.data, "inspection_days", 1, 90, 14), **opening)


def competition_opened(cmd: c.Command, plans: Mapping[str, FeePlan]) -> Escrow:
    d, opening = cmd.data, _opening(cmd, plans)
    return Escrow.open_competition(
        prize=c.amount(d, "prize"), tax=c.tax(d, opening["plan"].currency),
        guaranteed=c.boolean(d, "guaranteed"), entry_deadline=c.timestamp(d, "entry_deadline"),
        award_deadline=c.timestamp(d, "award_deadline"),
        min_entries=c.integer(d, "min_entries", 0, 10_000, 0), **opening)


def task_opened(cmd: c.Command, plans: Mapping[str, FeePlan]) -> Escrow:
    d, opening = cmd.data, _opening(cmd, plans)
    return Escrow.open_task(
        unit_price=c.amount(d, "unit_price"), quantity=c.integer(d, "quantity", 1, 100_000),
        tax=c.tax(d, opening["plan"].currency),
        approval_days=c.integer(d, "approval_days", 1, 90, 14), **opening)


def _cause(cmd: c.Command) -> dict[str, Any]:
    return {"causation_id": cmd.command_id, "at": cmd.time}


PAYOUT_TYPES = frozenset({"payout.settled", "payout.failed"})

OPENERS: dict[str, Opener] = {
    "project.contracted": project_contracted,
    "competition.opened": competition_opened,
    "task.opened": task_opened,
}

HANDLERS: dict[str, Handler] = {
    "project.milestone_added": lambda e, m: e.add_milestone(
        c.ident(m.data, "milestone_id"), c.amount(m.data, "amount"),
        c.tax(m.data, e.currency), **_cause(m)),
    "project.milestone_funded": lambda e, m: e.fund_milestone(
        c.ident(m.data, "milestone_id"), c.amount(m.data, "amount"),
        c.ident(m.data, "payment_ref"), **_cause(m)),
    "project.milestone_delivered": lambda e, m: e.deliver_milestone(
        c.ident(m.data, "milestone_id"), **_cause(m)),
    "project.revision_requested": lambda e, m: e.request_revision(
        c.ident(m.data, "milestone_id"), c.text(m.data, "reason"), **_cause(m)),
    "project.milestone_accepted": lambda e, m: e.accept_milestone(
        c.ident(m.data, "milestone_id"), **_cause(m)),
    "project.milestone_cancelled": lambda e, m: e.cancel_milestone(
        c.ident(m.data, "milestone_id"), c.text(m.data, "reason"), **_cause(m)),
    "competition.funded": lambda e, m: e.fund_competition(
        c.amount(m.data, "amount"), c.ident(m.data, "payment_ref"), **_cause(m)),
    "competition.entry_submitted": lambda e, m: e.submit_entry(
        c.ident(m.data, "entry_id"), c.ident(m.data, "worker_id"), **_cause(m)),
    "competition.awarded": lambda e, m: e.award(_awards(m.data), **_cause(m)),
    "competition.cancelled": lambda e, m: e.cancel_competition(
        c.text(m.data, "reason"), **_cause(m)),
    "task.funded": lambda e, m: e.fund_task(
        c.amount(m.data, "amount"), c.ident(m.data, "payment_ref"), **_cause(m)),
    "task.submission_received": lambda e, m: e.receive_submission(
        c.ident(m.data, "submission_id"), c.ident(m.data, "worker_id"), **_cause(m)),
    "task.submission_approved": lambda e, m: e.approve_submission(
        c.ident(m.data, "submission_id"), **_cause(m)),
    "task.submission_rejected": lambda e, m: e.reject_submission(
        c.ident(m.data, "submission_id"), c.text(m.data, "reason"), **_cause(m)),
    "task.closed": lambda e, m: e.close_task(**_cause(m)),
    "dispute.opened": lambda e, m: e.open_dispute(
        c.ident(m.data, "item_id"), c.text(m.data, "opened_by"), c.text(m.data, "reason"),
        **_cause(m)),
    "dispute.resolved": lambda e, m: e.resolve_dispute(
        c.ident(m.data, "item_id"), c.split_amount(m.data, "worker_amount"),
        c.split_amount(m.data, "client_amount"), **_cause(m)),
}


def _awards(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    raw = c.required(data, "awards")
    if not isinstance(raw, list):
        raise InvalidInput("awards must be a list", "invalid_field")
    return [(c.ident(a, "entry_id"), c.amount(a, "amount")) for a in raw]


def apply(escrow: Escrow | None, cmd: c.Command, plans: Mapping[str, FeePlan]) -> Escrow:
    """Apply `cmd` to `escrow` (or open it); returns the escrow with new pending events."""
    if cmd.type in OPENERS:
        if escrow is not None:
            raise Rejected(f"job {cmd.job_id} already exists", "job_exists")
        return OPENERS[cmd.type](cmd, plans)
    handler = HANDLERS.get(cmd.type)
    if handler is None:
        raise Rejected(f"unknown event type {cmd.type!r}", "unknown_type")
    if escrow is None:
        raise NotFound(f"unknown job {cmd.job_id}", "unknown_job")
    handler(escrow, cmd)
    return escrow
