"""`/v1/reconciliation` (SPEC §13): the day's report (the bank's closing balance
against the ledger's cash, the open bank lines, the ledger's movements with no
bank line), `/v1/reconciliation/unmatched` (both kinds, JSON or CSV), and
finance's decisions: `POST /v1/reconciliation/lines/{line_id}/match` and
`…/unmatch`, each with a reason, stored as a `statement_line_decided` event.

The one place the API writes: a decision goes into the event store (never into
the read models), and shows once the projections have it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from settlement.api.auth import role
from settlement.api.config import Config, Schema
from settlement.api.database import Db
from settlement.api.models import ErrorResponse
from settlement.api.openapi import CSV_ROWS, ERRORS, NOT_FOUND
from settlement.api.queries import reconciliation as queries
from settlement.api.render import ApiError, render
from settlement.banking.calendar import CALENDAR_YEAR_MAX, CALENDAR_YEAR_MIN, JST
from settlement.reconcile.matching import MATCH, UNMATCH
from settlement.reconcile.report import Reconciled, day_report, expected_row, line_row

router = APIRouter(tags=["reconciliation"])
LINE_ID = r"^[0-9a-f]{32}$"
TARGET = r"^(funding|payout|remittance|return|run):[A-Za-z0-9._:-]{1,128}$"
REASON_CHARS_MAX = 2000
TARGETS_MAX = 100


async def finance(role_: Annotated[str, Depends(role)]) -> str:
    if role_ != "finance":
        raise ApiError(403, "forbidden", "only the finance role decides on statement lines")
    return role_


Finance = Annotated[str, Depends(finance)]


async def _reader(role_: Annotated[str, Depends(role)]) -> str:
    return role_  # finance and auditors read everything


Reader = Annotated[str, Depends(_reader)]


class UnmatchedRow(BaseModel):
    side: str = Field(description="bank (a statement line) or ledger (a cash movement)")
    key: str = Field(description="the line id, or the ledger movement's key")
    day: str = Field(description="booked (bank) or the ledger entry's JST date")
    direction: str
    amount: str
    currency: str
    counterparty: str | None
    reference: str | None
    reason: str | None = Field(description="why the line is open: no_candidate, ambiguous, "
                                           "already_matched, amount_differs, unmatched_by_hand")
    candidates: str | None = Field(description="the candidate sets, `;` between sets")


class ReportLine(BaseModel):
    line_id: str
    booked: str = Field(description="勘定日, YYYY-MM-DD")
    direction: str = Field(pattern="^(credit|debit)$")
    amount: str
    currency: str
    counterparty: str
    reference: str
    status: str = Field(pattern="^(matched|open)$")
    rule: str | None = Field(description="payment_ref, amount_name, amount_name_combined, "
                                         "returned_transfer, run_total, payout, remittance, "
                                         "manual or bank_fee")
    targets: list[str]
    reason: str | None
    candidates: list[list[str]]


class LedgerMovement(BaseModel):
    key: str = Field(description="funding:<position>, payout:<id>, return:<payout id>, "
                                 "remittance:<remittance id>")
    kind: str
    direction: str
    amount: str
    currency: str
    day: str = Field(description="the ledger entry's JST date")
    payment_ref: str | None


class Report(BaseModel):
    date: str
    currency: str
    bank_closing_balance: str | None = Field(description="取引後残高 of the day; null when "
                                                         "no statement states it")
    ledger_cash: str = Field(description="assets:safeguarded_cash at the end of the day (JST)")
    difference: str | None = Field(description="bank_closing_balance − ledger_cash")
    unmatched_lines: list[ReportLine]
    unmatched_lines_amount: str
    ledger_without_bank: list[LedgerMovement]
    ledger_without_bank_amount: str


class Unmatched(BaseModel):
    as_of: str
    bank: list[ReportLine]
    ledger: list[LedgerMovement]
    bank_amount: str
    ledger_amount: str


class Decided(BaseModel):
    line_id: str
    decision_id: str
    action: str
    targets: list[str]
    reason: str


CONFLICT: dict[int | str, dict[str, Any]] = {409: {
    "model": ErrorResponse,
    "description": "`reconciliation_target_matched`: a target is matched to another line; "
                   "`bank_fee_booked`: the line is booked as a bank charge; "
                   "`statement_line_matched`: the line is matched (unmatch it first)"}}


class Decide(BaseModel):
    targets: list[str] = Field(default_factory=list, max_length=TARGETS_MAX)
    reason: str = Field(min_length=1, max_length=REASON_CHARS_MAX)


def _reconciled(conn: Any, schema: str) -> Reconciled:
    found = queries.reconciled(conn, schema)
    if found is None:
        raise ApiError(503, "projections_unavailable", "the reconciliation tables are not "
                       "projected yet")
    return found


@router.get("/v1/reconciliation", response_model=Report,
            responses={**ERRORS, **NOT_FOUND, **CSV_ROWS})
def report(request: Request, _: Reader, db: Db, schema: Schema,
           day: Annotated[date | None, Query(alias="date", description=(
               "the statement day (JST; default: the last day a statement states)"))] = None,
           ) -> Response:
    """The day's reconciliation: the bank's closing balance against
    `assets:safeguarded_cash` at the end of the day, the difference, the open bank
    lines booked up to that day, and the ledger's cash movements with no bank line
    older than three business days. As CSV: those lines and movements, a row each."""
    # A year inside the bank calendar's, so the windows around the day are too.
    if day is not None and not CALENDAR_YEAR_MIN < day.year < CALENDAR_YEAR_MAX:
        raise ApiError(400, "date_outside_calendar", f"date must be within "
                       f"{CALENDAR_YEAR_MIN + 1}–{CALENDAR_YEAR_MAX - 1}", "date")
    with db.connection(snapshot=True) as conn:
        found = _reconciled(conn, schema)
        chosen = day or max(found.closings, default=None) or found.last_booked
        if chosen is None:
            raise ApiError(404, "statement_not_found", "no statement is imported", "date")
        cash = queries.ledger_cash(conn, schema, chosen)
    body = day_report(found, chosen, cash)
    rows = ([_bank_row(r) for r in body["unmatched_lines"]]
            + [_ledger_row(r) for r in body["ledger_without_bank"]])
    return render(body, request, rows=rows, row_model=UnmatchedRow)


@router.get("/v1/reconciliation/unmatched", response_model=Unmatched,
            responses={**ERRORS, **CSV_ROWS})
def unmatched(request: Request, _: Reader, db: Db, schema: Schema, config: Config) -> Response:
    """Every open bank line and every ledger cash movement with no bank line older
    than three business days (as of today, JST)."""
    from settlement.banking.calendar import jst_date

    with db.connection(snapshot=True) as conn:
        found = _reconciled(conn, schema)
    today = jst_date(config.now())
    bank = [line_row(line, found) for line in found.open_lines()]
    ledger = [expected_row(e) for e in found.missing(today)]
    rows = [_bank_row(r) for r in bank] + [_ledger_row(r) for r in ledger]
    body = {"as_of": today.isoformat(), "bank": bank, "ledger": ledger,
            "bank_amount": str(sum(int(r["amount"]) for r in bank)),
            "ledger_amount": str(sum(int(r["amount"]) for r in ledger))}
    return render(body, request, rows=rows, row_model=UnmatchedRow)


def _bank_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"side": "bank", "key": row["line_id"], "day": row["booked"],
            "direction": row["direction"], "amount": row["amount"], "currency": row["currency"],
            "counterparty": row["counterparty"], "reference": row["reference"],
            "reason": row["reason"],
            "candidates": ";".join(" ".join(c) for c in row["candidates"]) or None}


def _ledger_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"side": "ledger", "key": row["key"], "day": row["day"],
            "direction": row["direction"], "amount": row["amount"], "currency": row["currency"],
            "counterparty": None, "reference": row["payment_ref"], "reason": "no_bank_line",
            "candidates": None}


def _store(request: Request, event: Any) -> None:
    """Store a decision: an application opened for it (decisions are rare; a pool
    kept open would outlive the API's own)."""
    from settlement.application.app import SettlementApplication
    from settlement.infra.postgres import pg_env

    app = SettlementApplication({**pg_env(request.app.state.config.database_url),
                                 "CREATE_TABLE": "n"})
    try:
        app.save(event)
    finally:
        app.close()


def _decide(request: Request, db: Any, schema: str, config: Any, line_id: str, action: str,
            decide: Decide) -> Response:
    from settlement.reconcile.events import LineDecision

    with db.connection(snapshot=True) as conn:
        _known_line(conn, schema, line_id)
        found = _reconciled(conn, schema)
    if action == MATCH:
        _check_targets(found, line_id, decide.targets)
    elif decide.targets:
        raise ApiError(400, "invalid_input", "an unmatch names no targets", "targets")
    decision_id = uuid.uuid4().hex  # ids at the edge: each decision is its own event
    event = LineDecision.decide(line_id, decision_id, action, list(decide.targets),
                                decide.reason, config.now())
    _store(request, event)
    return render({"line_id": line_id, "decision_id": decision_id, "action": action,
                   "targets": decide.targets, "reason": decide.reason})


def _known_line(conn: Any, schema: str, line_id: str) -> tuple[str, Decimal, str, date]:
    """The line (direction, amount, currency, booked); 404 if there is none, 409 if its charge
    is booked (a booking is never undone by a decision)."""
    found = queries.line(conn, schema, line_id)
    if found is None:
        raise ApiError(404, "statement_line_not_found", f"no statement line {line_id}",
                       "line_id")
    if queries.bank_fee_booked(conn, schema, line_id):
        raise ApiError(409, "bank_fee_booked", f"line {line_id} is booked as a bank charge",
                       "line_id")
    return found


def _check_targets(found: Reconciled, line_id: str, targets: list[str]) -> None:
    if not targets:
        raise ApiError(400, "reconciliation_targets_missing", "a match names its targets",
                       "targets")
    for target in targets:
        if not found.result.known(target):
            raise ApiError(400, "reconciliation_target_unknown", f"no ledger movement "
                           f"{target}", "targets")
        holder = found.result.holder(target)
        if holder is not None and holder != line_id:
            raise ApiError(409, "reconciliation_target_matched", f"{target} is matched to "
                           f"line {holder}: unmatch that line first", "targets")


@router.post("/v1/reconciliation/lines/{line_id}/match", response_model=Decided,
             responses={**ERRORS, **NOT_FOUND, **CONFLICT})
def match_line(request: Request, _: Finance, db: Db, schema: Schema, config: Config,
               line_id: Annotated[str, Path(pattern=LINE_ID)],
               decide: Annotated[Decide, Body()]) -> Response:
    """Match a statement line by hand to ledger movements (`funding:<position>`,
    `payout:<id>`, `return:<payout id>`, `run:<id>`), with a reason."""
    return _decide(request, db, schema, config, line_id, MATCH, decide)


@router.post("/v1/reconciliation/lines/{line_id}/unmatch", response_model=Decided,
             responses={**ERRORS, **NOT_FOUND, **CONFLICT})
def unmatch_line(request: Request, _: Finance, db: Db, schema: Schema, config: Config,
                 line_id: Annotated[str, Path(pattern=LINE_ID)],
                 decide: Annotated[Decide, Body()]) -> Response:
    """Unmatch a statement line by hand (it stays open until matched by hand), with a
    reason."""
    return _decide(request, db, schema, config, line_id, UNMATCH, decide)


class BankFeeConfirmed(BaseModel):
    line_id: str
    decision_id: str
    amount: str
    currency: str
    reason: str


class Confirm(BaseModel):
    reason: str = Field(min_length=1, max_length=REASON_CHARS_MAX)


@router.post("/v1/reconciliation/lines/{line_id}/bank-fee", response_model=BankFeeConfirmed,
             responses={**ERRORS, **NOT_FOUND, **CONFLICT})
def confirm_bank_fee(request: Request, _: Finance, db: Db, schema: Schema,
                     line_id: Annotated[str, Path(pattern=LINE_ID)],
                     confirm: Annotated[Confirm, Body()]) -> Response:
    """Confirm a debit line as the bank's charge: booked to `expenses:bank_fees` from
    `assets:safeguarded_cash` (a `bank_fee_booked` event, once per line), and the
    line matched as `bank_fee`. The charge is value-dated: its time is the start
    (00:00 JST) of the day the bank booked it, not the day finance confirmed it, so
    the ledger's cash at the end of each statement day is what the bank held then
    and the day's report has no difference left that no open item explains."""
    from eventsourcing.persistence import IntegrityError

    from settlement.core.money import money
    from settlement.reconcile.events import BankFee

    with db.connection(snapshot=True) as conn:
        direction, amount, currency, booked = _known_line(conn, schema, line_id)
        found = _reconciled(conn, schema)
    if direction != "debit":
        raise ApiError(400, "bank_fee_not_debit", "only money the bank took is a charge",
                       "line_id")
    matched = found.result.match_of(line_id)
    if matched is not None and matched.rule != "bank_fee":
        raise ApiError(409, "statement_line_matched", f"line {line_id} is matched "
                       f"({matched.rule}): unmatch it first", "line_id")
    decision_id = uuid.uuid4().hex
    event = BankFee.book(line_id, decision_id, money(amount, currency), confirm.reason,
                         datetime.combine(booked, time(), JST))
    try:
        _store(request, event)
    except IntegrityError:
        raise ApiError(409, "bank_fee_booked", f"line {line_id} is booked as a bank charge",
                       "line_id") from None
    return render({"line_id": line_id, "decision_id": decision_id, "amount": str(amount),
                   "currency": currency, "reason": confirm.reason})
