"""What every handler reads the same way: the fields that open a job, and the
cause and time a change is recorded with."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from settlement.core.commands import Command, boolean, ident, required, terms
from settlement.core.errors import Rejected
from settlement.core.fees import FeePlan


class Cause(TypedDict):
    """The keyword arguments every escrow command takes: why, and when."""

    causation_id: str
    at: datetime


class Opening(Cause):
    """The keyword arguments every opening (`Escrow.contract_project`, …) takes."""

    job_id: str
    client_id: str
    plan: FeePlan
    withholding: bool
    terms: dict[str, Any] | None


def cause(cmd: Command) -> Cause:
    return {"causation_id": cmd.command_id, "at": cmd.time}


def opening(cmd: Command, plans: Mapping[str, FeePlan]) -> Opening:
    # Parsed in this order, so the first bad field is the one reported.
    data = cmd.data
    return {
        "job_id": cmd.job_id, "client_id": ident(data, "client_id"), "plan": plan(data, plans),
        "withholding": boolean(data, "withholding", False), "terms": terms(data),
        "causation_id": cmd.command_id, "at": cmd.time,
    }


def plan(data: Mapping[str, Any], plans: Mapping[str, FeePlan]) -> FeePlan:
    name = required(data, "fee_plan")
    if name not in plans:
        raise Rejected(f"unknown fee plan {name!r}", "unknown_fee_plan")
    return plans[name]
