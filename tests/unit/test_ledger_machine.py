"""Stateful property test of the escrow ledger (SPEC §2, §5, §6).

A Hypothesis state machine drives random command sequences, valid and invalid,
over projects, competitions and tasks in the shipped JPY and USD fee plans,
with disputes and timer passes on an advancing clock. After every step it
checks the ledger invariants of SPEC §6 over every event so far, that each
escrow agrees with its own ledger, and that each escrow rebuilt from its stored
events (through the real JSON transcoding) equals the live one.

Each step knows, from the SPEC and the test's own record of the job, whether
the command it sends must be accepted; a rejected command must change nothing
and leave no event. Releases are checked against the fees of SPEC §5 on the
worker's cumulative gross, postings against the lines of SPEC §6, timer passes
against the timers of SPEC §2.

Under CI (env `CI` set) the machine runs 300 examples of 60 steps (~45 s on two
cores); locally 50. Hypothesis' built-in `ci` profile (derandomized, no
database) still applies underneath. Run with `--hypothesis-show-statistics` to
see how often releases, refunds, dispute resolutions and each timer kind occur.
"""

from __future__ import annotations

import copy
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from settlement.application.app import SettlementApplication
from settlement.core.errors import SettlementError
from settlement.core.fees import DEFAULT_FEE_PLANS, FeePlan, load_fee_plans
from settlement.core.money import Money, exponent, floor, zero
from settlement.core.movements import Funding, Refund, Release
from settlement.escrow import Escrow, escrow_id
from settlement.escrow import items as it
from settlement.ledger import accounts
from settlement.ledger.posting import Posting

PLANS = load_fee_plans(DEFAULT_FEE_PLANS)
# (plan, withholding): withholding is JPY only (SPEC §5).
SETUPS = [("tiered", False), ("tiered", True), ("flat", False), ("flat", True),
          ("usd_standard", False)]
CLIENTS = ("client-a", "client-b")
WORKERS = ("w1", "w2", "w3")
START = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
JOBS_MAX = 5
DISPUTES_STEERED_MAX = 2

# Amounts in minor units: small (rounding), mid (fee tiers), large (high withholding).
units = st.one_of(st.integers(1, 999), st.integers(1_000, 300_000),
                  st.integers(300_001, 3_000_000))
# Part of an amount that is included consumption tax.
tax_parts = st.sampled_from([Decimal(0), Decimal(10) / Decimal(110), Decimal(1)])
picks = st.integers(0, 31)
# How a rule picks its item: mostly among those the command applies to.
aims = st.sampled_from(["valid", "valid", "valid", "any"])
payments = st.sampled_from(["exact"] * 6 + ["short", "over", "no_fee", "currency"])
splits = st.sampled_from(["worker", "client", "split", "split", "split",
                          "mismatch", "negative", "currency"])
award_modes = st.sampled_from(["exact"] * 6 + ["short", "duplicate", "unknown", "negative",
                                               "currency", "empty"])
# Arguments of the openings.
PROJECT_ARGS: dict[str, Any] = {
    "setup": st.sampled_from(SETUPS), "client": st.sampled_from(CLIENTS),
    "worker": st.sampled_from(WORKERS), "amounts": st.lists(units, min_size=1, max_size=4),
    "tax_part": tax_parts, "inspection_days": st.integers(1, 5),
}
COMPETITION_ARGS: dict[str, Any] = {
    "setup": st.sampled_from(SETUPS), "client": st.sampled_from(CLIENTS), "prize": units,
    "tax_part": tax_parts, "guaranteed": st.booleans(), "entry_hours": st.integers(48, 240),
    "award_hours": st.integers(24, 120), "min_entries": st.sampled_from([0, 0, 0, 1, 2]),
}
TASK_ARGS: dict[str, Any] = {
    "setup": st.sampled_from(SETUPS), "client": st.sampled_from(CLIENTS), "unit_price": units,
    "tax_part": tax_parts, "quantity": st.integers(1, 4), "approval_days": st.integers(1, 5),
}
OPENINGS = st.one_of(
    st.fixed_dictionaries(PROJECT_ARGS).map(lambda args: ("project", args)),
    st.fixed_dictionaries(COMPETITION_ARGS).map(lambda args: ("competition", args)),
    st.fixed_dictionaries(TASK_ARGS).map(lambda args: ("task", args)),
)
# A job step's `move` names a command of the job's format; the lists weight the
# commands so that items get through their lifecycles.
MOVES = {
    "project": ["fund"] * 3 + ["deliver"] * 3 + ["accept"] * 2 + [
        "revise", "cancel", "add", "wrong_format"],
    "competition": ["fund"] * 2 + ["enter"] * 5 + ["award"] * 3 + ["cancel", "wrong_format"],
    "task": ["fund"] * 2 + ["receive"] * 4 + ["approve"] * 2 + ["reject"] * 2 + [
        "close", "wrong_format"],
}
assert {len(moves) for moves in MOVES.values()} == {12}
JOB_STEP_ARGS: dict[str, st.SearchStrategy[Any]] = {
    "which": st.integers(0, JOBS_MAX - 1), "move": st.sampled_from(range(12)), "pick": picks,
    "aim": aims, "pay": payments, "worker": st.sampled_from(WORKERS), "amount": units,
    "tax_part": tax_parts, "mode": award_modes, "count": st.sampled_from([3, 2, 1]),
    "weights": st.lists(st.integers(1, 5), min_size=3, max_size=3),
}
DISPUTE_STEP_ARGS: dict[str, st.SearchStrategy[Any]] = {
    "action": st.sampled_from(["open", "resolve"]), "pick": picks, "aim": aims,
    "opened_by": st.sampled_from(["client", "worker", "client", "worker", "platform"]),
    "split": splits, "percent": st.integers(0, 100),
}
TIMER_PASS_ARGS: dict[str, st.SearchStrategy[Any]] = {
    "days": st.integers(0, 3), "hours": st.integers(0, 23),
}
ACTIONS = ["job"] * 8 + ["dispute"] * 2 + ["timers"] * 2 + ["open_job", "invalid_opening"]


def unit_of(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))


def money_of(minor_units: int, currency: str) -> Money:
    return Money(Decimal(minor_units) * unit_of(currency), currency)


def other_currency(currency: str) -> str:
    return "USD" if currency == "JPY" else "JPY"


def tax_of(amount: Money, part: Decimal) -> Money:
    return floor(amount.amount * part, amount.currency.code)


def payment(plan: FeePlan, base: Money, kind: str) -> tuple[Money, bool]:
    """What the client pays for funding `base`, and whether SPEC §3 accepts it."""
    fee = plan.client_fee(base).total
    exact = base + fee
    one = Money(unit_of(plan.currency), plan.currency)
    paid = {
        "exact": exact, "short": exact - one, "over": exact + one, "no_fee": base,
        "currency": Money(exact.amount, other_currency(plan.currency)),
    }[kind]
    return paid, kind == "exact" or (kind == "no_fee" and fee.amount == 0)


def shares(total: Money, weights: list[int]) -> list[Money]:
    """`total` split by `weights` in minor units, the remainder to the first part."""
    currency = total.currency.code
    whole = int(total.amount / unit_of(currency))
    parts = [whole * w // sum(weights) for w in weights]
    parts[0] += whole - sum(parts)
    return [money_of(p, currency) for p in parts]


def _invalid_openings() -> dict[str, Callable[[datetime], Escrow]]:
    usd, jpy = PLANS["usd_standard"], PLANS["tiered"]
    yen, no_tax = Money(Decimal(1000), "JPY"), zero("JPY")

    def common(at: datetime) -> dict[str, Any]:
        return {"job_id": "bad", "client_id": "client-a", "terms": None,
                "causation_id": "bad", "at": at}

    return {
        "usd_withholding": lambda at: Escrow.open_task(
            plan=usd, unit_price=Money(Decimal(10), "USD"), quantity=1, tax=zero("USD"),
            approval_days=3, withholding=True, **common(at)),
        "tax_over_amount": lambda at: Escrow.contract_project(
            worker_id="w1", plan=jpy, milestones=[("m1", yen, yen + yen)], withholding=False,
            inspection_days=3, **common(at)),
        "deadlines": lambda at: Escrow.open_competition(
            plan=jpy, prize=yen, tax=no_tax, guaranteed=True, entry_deadline=at,
            award_deadline=at - timedelta(hours=1), min_entries=0, withholding=False,
            **common(at)),
        "quantity": lambda at: Escrow.open_task(
            plan=jpy, unit_price=yen, quantity=0, tax=no_tax, approval_days=3,
            withholding=False, **common(at)),
        "duplicate_milestones": lambda at: Escrow.contract_project(
            worker_id="w1", plan=jpy, milestones=[("m1", yen, no_tax)] * 2, withholding=False,
            inspection_days=3, **common(at)),
        "currency": lambda at: Escrow.contract_project(
            worker_id="w1", plan=usd, milestones=[("m1", yen, no_tax)], withholding=False,
            inspection_days=3, **common(at)),
    }


INVALID_OPENINGS = _invalid_openings()


def steer(command: str, aim: str, applicable: dict[str, bool], forward: tuple[str, ...]) -> str:
    """Mostly (`aim` valid/exact) turn a command that cannot apply now into the
    first of `forward` that can, so items move on through their lifecycles; else
    keep it, to be refused.

    Hypothesis often repeats a step many times in a run, so steering only ever
    moves forward (fund, deliver, enter, receive …): repeating a step never
    drains a job by cancelling, closing or deciding everything before timers
    get their chance."""
    if aim not in ("valid", "exact") or applicable.get(command, True):
        return command
    return next((c for c in forward if applicable[c]), command)


def entry_ids(escrow: Escrow) -> list[str]:
    return [i.item_id for i in escrow.items.values() if i.kind == it.ENTRY]


def award_list(escrow: Escrow, prize: Money, pick: int, count: int, mode: str,
               weights: list[int]) -> list[tuple[str, Money]]:
    """Awards of up to `count` entries splitting `prize` by `weights`; a mode
    other than `exact` breaks them the way it names. Entries are taken grouped by
    worker, so that one worker often wins twice (the fee tiers then run on)."""
    entries = sorted(entry_ids(escrow), key=lambda e: str(escrow.items[e].worker_id))
    start = pick % len(entries) if entries else 0
    chosen = (entries[start:] + entries[:start])[:count] or ["e-none"]
    amounts = shares(prize, weights[:len(chosen)])
    awards = [(e, a) for e, a in zip(chosen, amounts, strict=True) if a.amount > 0]
    currency = prize.currency.code
    one = Money(unit_of(currency), currency)
    if mode == "short":
        awards[0] = (awards[0][0], awards[0][1] - one)
    elif mode == "duplicate":
        awards.append(awards[0])
    elif mode == "unknown":
        awards.append(("e-unknown", zero(currency)))
    elif mode == "negative":
        other = entries[1] if len(entries) > 1 else "e-unknown"
        awards = [(chosen[0], prize + one), (other, -one)]
    elif mode == "currency":
        awards = [(e, Money(a.amount, other_currency(currency))) for e, a in awards]
    elif mode == "empty":
        awards = []
    return awards


@dataclass
class Job:
    """What the test itself knows of a job, independent of the aggregate."""

    job_id: str
    format: str
    plan: FeePlan
    withholding: bool
    client_id: str
    basis: dict[str, tuple[Money, Money]] = field(default_factory=dict)  # item -> amount, tax
    rules: dict[str, Any] = field(default_factory=dict)  # timer parameters of the opening
    delivered: dict[str, datetime] = field(default_factory=dict)  # item -> when delivered
    entrants: list[tuple[str, str]] = field(default_factory=list)  # (entry, worker), in order
    events: list[Any] = field(default_factory=list)
    seq: int = 0

    @property
    def currency(self) -> str:
        return self.plan.currency

    def new_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app = SettlementApplication(
            env={"PERSISTENCE_MODULE": "eventsourcing.popo", "AGGREGATE_CACHE_MAXSIZE": ""},
            plans=PLANS,
        )
        # No cache: `repository.get` must rebuild from the stored events.
        assert self.app.repository.cache is None
        self.clock = START
        self.escrows: dict[str, Escrow] = {}
        self.jobs_known: dict[str, Job] = {}
        self.dirty: set[str] = set()
        self.totals: dict[tuple[str, str], list[Decimal]] = defaultdict(
            lambda: [Decimal(0), Decimal(0)])
        # job -> {"funded", "released", "refunded"} -> amount, from the events
        self.flows: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self.releases: Counter[tuple[str, str]] = Counter()  # (job, item) -> release count
        self.item_out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)  # released+refunded
        self.cumulative: dict[tuple[str, str], Money] = {}  # (job, worker) -> gross released
        self.disputes_opened = 0
        self.turn = 0

    # Recording and checking each step -------------------------------------------

    def now(self) -> datetime:
        # Commands take a little time; only timer passes move the clock far.
        self.clock += timedelta(minutes=1)
        return self.clock

    def attempt(self, job_id: str, label: str, command: Callable[[Escrow], object],
                expect: bool | None) -> bool:
        """Run `command` on the escrow; a rejection must change nothing.
        `expect` says whether the SPEC requires acceptance (None: either)."""
        escrow = self.escrows[job_id]
        before = snapshot(escrow)
        try:
            command(escrow)
        except SettlementError as error:
            assert expect is not True, f"{label} on {job_id} refused: {error}"
            assert escrow.collect_events() == [], f"{label} refused but left events"
            assert snapshot(escrow) == before, f"{label} refused but changed the escrow"
            event(f"rejected: {error.code}")
            return False
        assert expect is not False, f"{label} on {job_id} was accepted against the SPEC"
        self.record(job_id, list(escrow.collect_events()))
        return True

    def record(self, job_id: str, new: list[Any]) -> None:
        job = self.jobs_known[job_id]
        for domain_event in new:
            check_event_postings(job, domain_event)
            for posting in domain_event.postings:
                line = self.totals[(posting.amount.currency.code, posting.account)]
                line[0 if posting.side == "debit" else 1] += posting.amount.amount
            for movement in movements(domain_event):
                self.book(job, movement)
            self.note(describe(self.escrows[job_id], domain_event))
            remember_delivery(job, domain_event)
        job.events += new
        if new:
            self.app.save(*new)
            self.dirty.add(job_id)

    def book(self, job: Job, movement: Funding | Release | Refund) -> None:
        flows = self.flows[job.job_id]
        if isinstance(movement, Funding):
            flows["funded"] += movement.amount.amount
            return
        if isinstance(movement, Refund):
            flows["refunded"] += movement.amount.amount
            self.item_out[(job.job_id, movement.item_id)] += movement.amount.amount
            self.note(f"refund ({job.format})")
            return
        flows["released"] += movement.gross.amount
        self.releases[(job.job_id, movement.item_id)] += 1
        self.item_out[(job.job_id, movement.item_id)] += movement.gross.amount
        check_release_fees(job, movement, self.cumulative)
        self.note(f"release ({job.format})")

    def note(self, label: str) -> None:
        """Count `label` in the statistics (`--hypothesis-show-statistics`)."""
        event(label)

    def open_job(self, job: Job, create: Callable[[], Escrow]) -> None:
        try:
            escrow = create()
        except SettlementError as error:
            raise AssertionError(f"opening {job.job_id} refused: {error}") from error
        self.escrows[job.job_id] = escrow
        self.jobs_known[job.job_id] = job
        self.record(job.job_id, list(escrow.collect_events()))

    def new_job_id(self, prefix: str) -> str:
        return f"{prefix}-{len(self.jobs_known) + 1}"

    # Openings: one job of each format always, more when a rule asks ---------------

    def contract_project(self, setup: tuple[str, bool], client: str, worker: str,
                         amounts: list[int], tax_part: Decimal, inspection_days: int) -> None:
        plan, withholding = PLANS[setup[0]], setup[1]
        job = Job(self.new_job_id("proj"), "project", plan, withholding, client,
                  rules={"inspection_days": inspection_days})
        milestones = []
        for minor in amounts:
            amount = money_of(minor, plan.currency)
            milestones.append((job.new_id("m"), amount, tax_of(amount, tax_part)))
            job.basis[milestones[-1][0]] = milestones[-1][1:]
        self.open_job(job, lambda: Escrow.contract_project(
            job_id=job.job_id, client_id=client, worker_id=worker, plan=plan,
            milestones=milestones, withholding=withholding, inspection_days=inspection_days,
            terms={"scope": "work"}, causation_id=f"open-{job.job_id}", at=self.now()))

    def open_competition(self, setup: tuple[str, bool], client: str, prize: int,
                         tax_part: Decimal, guaranteed: bool, entry_hours: int, award_hours: int,
                         min_entries: int) -> None:
        plan, withholding = PLANS[setup[0]], setup[1]
        job = Job(self.new_job_id("comp"), "competition", plan, withholding, client)
        amount = money_of(prize, plan.currency)
        job.basis["prize"] = (amount, tax_of(amount, tax_part))
        at = self.now()
        entry_deadline = at + timedelta(hours=entry_hours)
        job.rules = {"guaranteed": guaranteed, "min_entries": min_entries,
                     "award_deadline": entry_deadline + timedelta(hours=award_hours)}
        self.open_job(job, lambda: Escrow.open_competition(
            job_id=job.job_id, client_id=client, plan=plan, prize=amount,
            tax=tax_of(amount, tax_part), guaranteed=guaranteed, entry_deadline=entry_deadline,
            award_deadline=entry_deadline + timedelta(hours=award_hours),
            min_entries=min_entries, withholding=withholding, terms=None,
            causation_id=f"open-{job.job_id}", at=at))

    def open_task(self, setup: tuple[str, bool], client: str, unit_price: int,
                  tax_part: Decimal, quantity: int, approval_days: int) -> None:
        plan, withholding = PLANS[setup[0]], setup[1]
        job = Job(self.new_job_id("task"), "task", plan, withholding, client,
                  rules={"approval_days": approval_days})
        price = money_of(unit_price, plan.currency)
        job.basis["unit"] = (price, tax_of(price, tax_part))
        self.open_job(job, lambda: Escrow.open_task(
            job_id=job.job_id, client_id=client, plan=plan, unit_price=price, quantity=quantity,
            tax=tax_of(price, tax_part), approval_days=approval_days, withholding=withholding,
            terms=None, causation_id=f"open-{job.job_id}", at=self.now()))

    # Every run starts with one job of each format; `step` may open more.
    @initialize(**PROJECT_ARGS)
    def first_project(self, **args: Any) -> None:
        self.contract_project(**args)

    @initialize(**COMPETITION_ARGS)
    def first_competition(self, **args: Any) -> None:
        self.open_competition(**args)

    @initialize(**TASK_ARGS)
    def first_task(self, **args: Any) -> None:
        self.open_task(**args)

    # One rule, `step`, runs every action: Hypothesis' swarm testing turns rules off
    # at random for a whole run, and with one rule per action most runs would lack
    # the job steps, disputes or timer passes that the interesting states need.
    # Each action draws its own arguments (shown as labelled draws when a run fails).
    @rule(action=st.sampled_from(ACTIONS), data=st.data())
    def step(self, action: str, data: st.DataObject) -> None:
        if action == "open_job" and len(self.escrows) >= JOBS_MAX:
            action = "job"
        actions: dict[str, tuple[Callable[..., None], dict[str, st.SearchStrategy[Any]]]] = {
            "job": (self.job_step, JOB_STEP_ARGS),
            "dispute": (self.dispute_step, DISPUTE_STEP_ARGS),
            "timers": (self.timer_pass, TIMER_PASS_ARGS),
            "open_job": (self.another_job, {"opening": OPENINGS}),
            "invalid_opening": (self.open_invalid, {"case": st.sampled_from(
                sorted(INVALID_OPENINGS))}),
        }
        run, arguments = actions[action]
        run(**data.draw(st.fixed_dictionaries(arguments), label=action))

    def another_job(self, opening: tuple[str, dict[str, Any]]) -> None:
        format_, args = opening
        openers: dict[str, Callable[..., None]] = {
            "project": self.contract_project, "competition": self.open_competition,
            "task": self.open_task}
        openers[format_](**args)

    def job_step(self, which: int, move: int, pick: int, aim: str, pay: str, worker: str,
                 amount: int, tax_part: Decimal, mode: str, count: int,
                 weights: list[int]) -> None:
        """A command of one job's format. Jobs take turns (offset by `which`), so a
        step repeated many times, as Hypothesis likes to do, moves every job along."""
        self.turn += 1
        job = list(self.escrows)[(self.turn + which) % len(self.escrows)]
        format_ = self.escrows[job].format
        command = MOVES[format_][move]
        if format_ == "project":
            self.project_step(job, command, pick, aim, pay, amount, tax_part)
        elif format_ == "competition":
            self.competition_step(job, command, worker, pay, pick, count, mode, weights)
        else:
            self.task_step(job, command, worker, pay, pick, aim)

    # Projects ------------------------------------------------------------------

    def project_step(self, job: str, command: str, pick: int, aim: str, pay: str,
                     amount: int, tax_part: Decimal) -> None:
        escrow, known = self.escrows[job], self.jobs_known[job]
        states = {"fund": [it.CONTRACTED], "deliver": [it.FUNDED], "accept": [it.DELIVERED],
                  "revise": [it.DELIVERED], "cancel": [it.CONTRACTED, it.FUNDED]}
        applicable = {c: any(i.state in s for i in escrow.items.values())
                      for c, s in states.items()}
        # One cancellation per project is plenty; more would drain it.
        applicable["cancel"] &= all(i.state != it.CANCELLED for i in escrow.items.values())
        command = steer(command, aim, applicable | {"add": True}, ("fund", "deliver", "add"))
        if command == "add":
            self.add_milestone(job, amount, tax_part, duplicate=aim == "any")
            return
        if command == "wrong_format":
            self.wrong_format(job)
            return
        item_id, valid = choose(escrow, pick, aim, it.MILESTONE, states[command])
        at = self.now()
        calls: dict[str, Callable[[Escrow], object]] = {
            "deliver": lambda e: e.deliver_milestone(item_id, causation_id="c", at=at),
            "revise": lambda e: e.request_revision(item_id, "fix", causation_id="c", at=at),
            "accept": lambda e: e.accept_milestone(item_id, causation_id="c", at=at),
            "cancel": lambda e: e.cancel_milestone(item_id, "moot", causation_id="c", at=at),
        }
        if command == "fund":
            base = known.basis.get(item_id, (money_of(1000, known.currency),))[0]
            paid, exact = payment(known.plan, base, pay)
            valid = valid and exact
            calls["fund"] = lambda e: e.fund_milestone(item_id, paid, "pay", causation_id="c",
                                                       at=at)
        self.attempt(job, f"{command}_milestone", calls[command], valid)

    def add_milestone(self, job: str, amount: int, tax_part: Decimal, duplicate: bool) -> None:
        known = self.jobs_known[job]
        item_id = "m1" if duplicate else known.new_id("m")
        price = money_of(amount, known.currency)
        tax = tax_of(price, tax_part)
        if self.attempt(job, "add_milestone", lambda e: e.add_milestone(
                item_id, price, tax, causation_id="c", at=self.now()), not duplicate):
            known.basis[item_id] = (price, tax)

    # Competitions --------------------------------------------------------------

    def competition_step(self, job: str, command: str, worker: str, pay: str, pick: int,
                         count: int, mode: str, weights: list[int]) -> None:
        escrow, known = self.escrows[job], self.jobs_known[job]
        open_for_entries = escrow.state == "funded" and not escrow.disputes
        at = self.now()
        command = steer(command, mode, {
            "fund": escrow.state == "opened",
            "enter": open_for_entries and at <= escrow.entry_deadline,
            # Mostly award among several entries: repeated winners, tiers, splits.
            "award": open_for_entries and len(entry_ids(escrow)) >= 2,
            "cancel": not escrow.guaranteed and escrow.state in ("opened", "funded") and (
                not escrow.disputes),
        }, ("fund", "enter"))
        if command == "fund":
            paid, exact = payment(known.plan, known.basis["prize"][0], pay)
            self.attempt(job, "fund_competition", lambda e: e.fund_competition(
                paid, "pay", causation_id="c", at=at), exact and escrow.state == "opened")
        elif command == "enter":
            entries = entry_ids(escrow)
            item_id = entries[0] if mode == "duplicate" and entries else known.new_id("e")
            # Two entrants only, so that workers often enter (and win) more than once.
            entrant = worker if worker in WORKERS[:2] else WORKERS[0]
            valid = (open_for_entries and item_id not in escrow.items
                     and at <= escrow.entry_deadline)
            self.attempt(job, "submit_entry", lambda e: e.submit_entry(
                item_id, entrant, causation_id="c", at=at), valid)
        elif command == "award":
            awards = award_list(escrow, known.basis["prize"][0], pick, count, mode, weights)
            valid = mode == "exact" and open_for_entries and bool(entry_ids(escrow))
            self.attempt(job, "award", lambda e: e.award(awards, causation_id="c", at=at), valid)
        elif command == "cancel":
            valid = not escrow.guaranteed and escrow.state in ("opened", "funded") and (
                not escrow.disputes)
            self.attempt(job, "cancel_competition", lambda e: e.cancel_competition(
                "moot", causation_id="c", at=at), valid)
        else:
            self.wrong_format(job)

    # Tasks ---------------------------------------------------------------------

    def task_step(self, job: str, command: str, worker: str, pay: str, pick: int,
                  aim: str) -> None:
        escrow, known = self.escrows[job], self.jobs_known[job]
        at = self.now()
        pending = any(i.state == it.PENDING for i in escrow.items.values())
        command = steer(command, aim, {
            "fund": escrow.state == "opened",
            "receive": escrow.state == "funded" and escrow.slots_taken < escrow.quantity,
            "approve": pending, "reject": pending,
            # Closing an empty task ends it at once: mostly close once work came in.
            "close": escrow.state != "closed" and bool(escrow.items),
        }, ("fund", "receive"))
        if command == "fund":
            paid, exact = payment(known.plan, known.basis["unit"][0] * escrow.quantity, pay)
            self.attempt(job, "fund_task", lambda e: e.fund_task(
                paid, "pay", causation_id="c", at=at), exact and escrow.state == "opened")
        elif command == "receive":
            item_id = next(iter(escrow.items), "s1") if aim == "any" else known.new_id("s")
            taken = sum(1 for i in escrow.items.values() if i.state != it.REJECTED)
            assert escrow.slots_taken == taken, "slots taken disagree with the submissions"
            valid = (escrow.state == "funded" and item_id not in escrow.items
                     and taken < escrow.quantity)
            self.attempt(job, "receive_submission", lambda e: e.receive_submission(
                item_id, worker, causation_id="c", at=at), valid)
        elif command in ("approve", "reject"):
            item_id, valid = choose(escrow, pick, aim, it.SUBMISSION, [it.PENDING])
            call: Callable[[Escrow], object] = (
                (lambda e: e.approve_submission(item_id, causation_id="c", at=at))
                if command == "approve" else
                (lambda e: e.reject_submission(item_id, "off brief", causation_id="c", at=at)))
            self.attempt(job, f"{command}_submission", call, valid)
        elif command == "close":
            self.attempt(job, "close_task", lambda e: e.close_task(causation_id="c", at=at),
                         escrow.state != "closed")
        else:
            self.wrong_format(job)

    # Disputes ------------------------------------------------------------------

    def dispute_step(self, action: str, pick: int, aim: str, opened_by: str, split: str,
                     percent: int) -> None:
        """Open or resolve a dispute; mostly on a job and item where that applies."""
        disputable = {j: [i.item_id for i in e.items.values() if is_disputable(e, i)]
                      for j, e in self.escrows.items()}
        disputed = {j: list(e.disputes) for j, e in self.escrows.items()}
        # At most DISPUTES_STEERED_MAX disputes are opened on purpose, one at a time:
        # a step repeated many times would otherwise freeze every item in the run.
        room = self.disputes_opened < DISPUTES_STEERED_MAX and not any(disputed.values())
        action = steer(action, aim, {"open": room and any(disputable.values()),
                                     "resolve": any(disputed.values())}, ("resolve",))
        if action == "open" and aim == "valid" and not room:
            return
        fits = disputable if action == "open" else disputed
        jobs = [j for j in sorted(fits) if fits[j]] if aim == "valid" else []
        job = (jobs or sorted(self.escrows))[pick % len(jobs or self.escrows)]
        if action == "open":
            self.open_dispute(job, pick, aim, opened_by, disputable[job])
        else:
            self.resolve_dispute(job, pick, aim, split, percent)

    def open_dispute(self, job: str, pick: int, aim: str, opened_by: str,
                     disputable: list[str]) -> None:
        escrow = self.escrows[job]
        if aim == "valid" and disputable:
            item_id = disputable[pick % len(disputable)]
        else:
            pool = [*escrow.items, "x-unknown"]
            item_id = pool[pick % len(pool)]
        valid = item_id in disputable and opened_by != "platform"
        self.disputes_opened += self.attempt(job, "open_dispute", lambda e: e.open_dispute(
            item_id, opened_by, "not as agreed", causation_id="c", at=self.now()), valid)

    def resolve_dispute(self, job: str, pick: int, aim: str, split: str, percent: int) -> None:
        escrow, known = self.escrows[job], self.jobs_known[job]
        item_id, valid = choose(escrow, pick, aim, None, [it.DISPUTED])
        item = escrow.items.get(item_id)
        if item is None:
            basis = money_of(100, known.currency)
        elif item.kind == it.ENTRY:
            basis = known.basis["prize"][0]
        else:
            basis = item.amount
        part = shares(basis, [max(percent, 1), max(100 - percent, 1)])[0]
        worker = {"worker": basis, "client": zero(known.currency)}.get(split, part)
        client = basis - worker
        one = Money(unit_of(known.currency), known.currency)
        if split == "mismatch":
            client += one
        elif split == "negative":
            worker, client = basis + one, -one
        elif split == "currency":
            worker = Money(worker.amount, other_currency(known.currency))
        self.attempt(job, "resolve_dispute", lambda e: e.resolve_dispute(
            item_id, worker, client, causation_id="c", at=self.now()),
            valid and split in ("worker", "client", "split"))

    # Refusals without an escrow, clock and timers --------------------------------

    def wrong_format(self, job: str) -> None:
        """A command of another format: `wrong_format`, nothing changes."""
        escrow = self.escrows[job]
        calls: dict[str, Callable[[Escrow], object]] = {
            "project": lambda e: e.close_task(causation_id="c", at=self.clock),
            "competition": lambda e: e.deliver_milestone("m1", causation_id="c", at=self.clock),
            "task": lambda e: e.submit_entry("e-wrong", "w1", causation_id="c", at=self.clock),
        }
        self.attempt(job, "wrong_format", calls[escrow.format], False)

    def open_invalid(self, case: str) -> None:
        """Openings the SPEC refuses: nothing is created."""
        try:
            INVALID_OPENINGS[case](self.clock)
        except SettlementError:
            return
        raise AssertionError(f"opening with {case} was accepted")

    def timer_pass(self, days: int, hours: int) -> None:
        """Time passes, then one pass of the timer loop over every escrow."""
        self.clock += timedelta(days=days, hours=hours)
        now = self.clock
        for job_id, escrow in self.escrows.items():
            job = self.jobs_known[job_id]
            expected = expected_timers(escrow, job, now)
            done = self.run_timers(job_id, now)
            assert [(a.action, a.item_id) for a in done] == expected, job_id
            for action in done:
                self.note(f"timer: {action.action}")
                if action.action == "default_award":
                    awarded = [(r.item_id, r.gross) for r in job.events[-1].releases]
                    assert awarded == guaranteed_split(job), f"{job_id} default award"
            assert escrow.due_timers(now) == [], "a timer pass left due actions"

    def run_timers(self, job_id: str, now: datetime) -> list[Any]:
        """The escrow's timer run at `now`, which must never be refused."""
        done: list[Any] = []

        def run(escrow: Escrow) -> None:
            done.extend(escrow.run_timers(now))

        self.attempt(job_id, "run_timers", run, True)
        return done

    # Invariants (SPEC §6) -------------------------------------------------------

    @invariant()
    def ledger_balances(self) -> None:
        by_currency: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        cash: dict[str, Decimal] = defaultdict(Decimal)
        obligations: dict[str, Decimal] = defaultdict(Decimal)
        for (currency, account), (debits, credits) in self.totals.items():
            by_currency[currency][0] += debits
            by_currency[currency][1] += credits
            if account == accounts.SAFEGUARDED_CASH:
                cash[currency] += debits - credits
            else:
                assert account.startswith(("liabilities:", "revenue:")), account
                obligations[currency] += credits - debits
            if account.startswith("liabilities:escrow:"):
                assert credits - debits >= 0, f"{account} below zero"
        for currency, (debits, credits) in by_currency.items():
            assert debits == credits, f"{currency} ledger unbalanced: {debits} != {credits}"
            assert cash[currency] == obligations[currency], f"{currency} cash != obligations"

    @invariant()
    def escrows_agree_with_ledger(self) -> None:
        for job_id, escrow in self.escrows.items():
            flows = self.flows[job_id]
            debits, credits = self.totals.get(
                (escrow.currency, accounts.escrow(job_id)), [Decimal(0), Decimal(0)])
            assert credits - debits == escrow.held.amount, f"{job_id} escrow account != held"
            assert escrow.funded.amount == flows["funded"]
            assert escrow.released.amount == flows["released"]
            assert escrow.refunded.amount == flows["refunded"]
            assert flows["funded"] == escrow.held.amount + flows["released"] + flows["refunded"]
            assert min(escrow.held.amount, flows["released"], flows["refunded"]) >= 0
            for worker, gross in escrow.released_to.items():
                assert gross == self.cumulative[(job_id, worker)], f"{job_id} released_to"

    @invariant()
    def held_is_what_items_still_owe(self) -> None:
        """SPEC §2: an escrow holds exactly the funded, undecided part of its items,
        so nothing is stranded in escrow once every item is decided."""
        for job_id, escrow in self.escrows.items():
            assert escrow.held == still_owed(escrow, self.jobs_known[job_id]), job_id

    @invariant()
    def nothing_paid_twice(self) -> None:
        for (job_id, item_id), count in self.releases.items():
            assert count == 1, f"{job_id}/{item_id} released {count} times"
        for (job_id, item_id), out in self.item_out.items():
            job = self.jobs_known[job_id]
            if job.format == "competition":
                continue
            if item_id != "capacity":  # a milestone or a submission
                limit = job.basis[item_id if job.format == "project" else "unit"][0]
                assert out <= limit.amount, f"{job_id}/{item_id} paid out {out} > {limit.amount}"
        for job_id, job in self.jobs_known.items():
            if job.format == "competition":
                flows = self.flows[job_id]
                prize = job.basis["prize"][0].amount
                assert flows["released"] <= prize, f"{job_id} awards exceed the prize"
                assert flows["released"] + flows["refunded"] <= prize

    @invariant()
    def replay_equals_live(self) -> None:
        for job_id in sorted(self.dirty):
            self.check_replay(job_id)
        self.dirty.clear()

    def check_replay(self, job_id: str) -> None:
        live = self.escrows[job_id]
        rebuilt: Any = self.app.repository.get(escrow_id(job_id))
        assert isinstance(rebuilt, Escrow)
        assert rebuilt.state_digest() == live.state_digest()
        assert snapshot(rebuilt) == snapshot(live)
        stored: list[Any] = list(self.app.events.get(escrow_id(job_id)))
        assert [e.postings for e in stored] == [e.postings for e in self.jobs_known[job_id].events]

    def teardown(self) -> None:
        for job_id in self.escrows:
            self.check_replay(job_id)


def still_owed(escrow: Escrow, job: Job) -> Money:
    """What the escrow should hold, from its items' states alone."""
    states = Counter(i.state for i in escrow.items.values())
    if job.format == "project":
        held = [i.amount for i in escrow.items.values()
                if i.state in (it.FUNDED, it.DELIVERED, it.DISPUTED)]
        return sum(held, zero(job.currency))
    if job.format == "competition":
        return job.basis["prize"][0] if escrow.state == "funded" else zero(job.currency)
    unit = job.basis["unit"][0]
    if escrow.state == "funded":  # every slot not yet released or resolved
        return unit * (escrow.quantity - states[it.RELEASED] - states[it.RESOLVED])
    if escrow.funded.amount > 0:  # closed after funding: what is still undecided
        return unit * (states[it.PENDING] + states[it.DISPUTED])
    return zero(job.currency)


def remember_delivery(job: Job, domain_event: Any) -> None:
    """When the worker delivered (the timers count from there), and who entered."""
    name = type(domain_event).__name__
    if name == "MilestoneDelivered":
        job.delivered[domain_event.milestone_id] = domain_event.timestamp
    elif name == "SubmissionReceived":
        job.delivered[domain_event.submission_id] = domain_event.timestamp
    elif name == "EntrySubmitted":
        job.entrants.append((domain_event.entry_id, domain_event.worker_id))


def expected_timers(escrow: Escrow, job: Job, now: datetime) -> list[tuple[str, str]]:
    """The timer actions SPEC §2 makes due at `now`: (action, item)."""
    if job.format != "competition":
        state, days, action = ((it.DELIVERED, job.rules["inspection_days"], "auto_accept")
                               if job.format == "project" else
                               (it.PENDING, job.rules["approval_days"], "auto_approve"))
        return [(action, i.item_id) for i in escrow.items.values()
                if i.state == state and job.delivered[i.item_id] + timedelta(days=days) <= now]
    if escrow.state != "funded" or escrow.disputes or now < job.rules["award_deadline"]:
        return []
    if len(job.entrants) < job.rules["min_entries"]:
        return [("refund_min_entries", "prize")]
    if job.rules["guaranteed"] and job.entrants:
        return [("default_award", "prize")]
    return [("refund_no_award", "prize")]


def guaranteed_split(job: Job) -> list[tuple[str, Money]]:
    """SPEC §2: the prize split equally among the distinct workers who entered, by
    their first entries; indivisible minor units one each to the earliest."""
    first: dict[str, str] = {}
    for entry_id, worker in job.entrants:
        first.setdefault(worker, entry_id)
    prize = job.basis["prize"][0]
    share, odd = divmod(int(prize.amount / unit_of(job.currency)), len(first))
    return [(entry_id, money_of(share + (n < odd), job.currency))
            for n, entry_id in enumerate(first.values())]


def describe(escrow: Escrow, domain_event: Any) -> str:
    """The event's type, with the detail that makes some cases worth counting."""
    name = type(domain_event).__name__
    if name == "DisputeResolved":
        return f"{name} ({escrow.items[domain_event.item_id].kind})"
    if name == "CompetitionAwarded":
        workers = [r.worker_id for r in domain_event.releases]
        return f"{name} ({'a worker twice' if len(set(workers)) < len(workers) else 'once each'})"
    if name == "SubmissionRejected" and domain_event.refund is not None:
        return f"{name} (after close, refunded)"
    if name == "TaskClosed" and any(i.state == it.PENDING for i in escrow.items.values()):
        return f"{name} (pending kept)"
    return name


def snapshot(escrow: Escrow) -> dict[str, Any]:
    """Every attribute of the escrow (deep-copied), but not its pending events."""
    return copy.deepcopy({k: v for k, v in vars(escrow).items() if k != "_pending_events"})


def choose(escrow: Escrow, pick: int, aim: str, kind: str | None,
           states: Any) -> tuple[str, bool]:
    """An item id for a command, and whether it is in one of `states`."""
    fits = [i.item_id for i in escrow.items.values()
            if (kind is None or i.kind == kind) and i.state in states]
    if aim == "valid" and fits:
        return fits[pick % len(fits)], True
    pool = [*escrow.items, "x-unknown"]
    item_id = pool[pick % len(pool)]
    return item_id, item_id in fits


def is_disputable(escrow: Escrow, item: it.Item) -> bool:
    """SPEC §2: any funded, not yet released item; a competition entry while the
    prize is held and no other entry is disputed."""
    if item.kind == it.MILESTONE:
        return item.state in (it.FUNDED, it.DELIVERED)
    if item.kind == it.SUBMISSION:
        return item.state == it.PENDING
    return item.state == it.ENTERED and escrow.state == "funded" and not escrow.disputes


def movements(domain_event: Any) -> list[Funding | Release | Refund]:
    found: list[Funding | Release | Refund] = []
    for value in vars(domain_event).values():
        values = value if isinstance(value, list) else [value]
        found += [v for v in values if isinstance(v, Funding | Release | Refund)]
    return found


def check_event_postings(job: Job, domain_event: Any) -> None:
    """Each event's postings balance, in the job's currency, and are exactly the
    lines SPEC §6 gives for the money the event moves (zero lines omitted)."""
    postings: list[Posting] = domain_event.postings
    name = type(domain_event).__name__
    debits = sum((p.amount.amount for p in postings if p.side == "debit"), Decimal(0))
    credits = sum((p.amount.amount for p in postings if p.side == "credit"), Decimal(0))
    assert debits == credits, f"{name} unbalanced: {debits} != {credits}"
    assert {p.amount.currency.code for p in postings} <= {job.currency}, name
    lines = [(p.account, p.side, p.amount.amount) for p in postings]
    expected = [line for m in movements(domain_event) for line in spec_lines(job, m)]
    assert sorted(lines) == sorted(expected), f"{name} postings {lines} != {expected}"


def spec_lines(job: Job, movement: Funding | Release | Refund) -> list[tuple[str, str, Decimal]]:
    """SPEC §6, written out: the ledger lines of one movement, zero lines omitted."""
    escrow = f"liabilities:escrow:{job.job_id}"
    if isinstance(movement, Funding):
        fee, fee_tax = movement.client_fee.amount, movement.client_fee_tax.amount
        lines = [("assets:safeguarded_cash", "debit", movement.amount.amount + fee + fee_tax),
                 (escrow, "credit", movement.amount.amount),
                 ("revenue:platform_fees:client", "credit", fee),
                 ("liabilities:consumption_tax", "credit", fee_tax)]
    elif isinstance(movement, Release):
        lines = [(escrow, "debit", movement.gross.amount),
                 (f"liabilities:worker_payable:{movement.worker_id}", "credit",
                  movement.net.amount),
                 ("revenue:platform_fees:worker", "credit", movement.fee.amount),
                 ("liabilities:consumption_tax", "credit", movement.fee_tax.amount),
                 (f"liabilities:withholding_tax:{job.client_id}", "credit",
                  movement.withholding.amount)]
    else:
        lines = [(escrow, "debit", movement.amount.amount),
                 (f"liabilities:client_refundable:{job.client_id}", "credit",
                  movement.amount.amount)]
    return [line for line in lines if line[2] != 0]


def check_release_fees(job: Job, release: Release,
                       cumulative: dict[tuple[str, str], Money]) -> None:
    """A release's parts add up, and its fees are those of SPEC §5 on the worker's
    cumulative gross in this escrow (tiers) and the item's share of included tax."""
    parts = (release.fee, release.fee_tax, release.withholding, release.net)
    assert all(p.amount >= 0 for p in parts), release
    assert release.gross == release.fee + release.fee_tax + release.withholding + release.net
    key = (job.job_id, release.worker_id)
    before = cumulative.get(key, zero(job.currency))
    amount, tax = job.basis.get(release.item_id) or job.basis.get("unit") or job.basis["prize"]
    if job.format == "competition":
        amount, tax = job.basis["prize"]
    share = floor(tax.amount * release.gross.amount / amount.amount, job.currency)
    expected = job.plan.release(release.gross, before, share, job.withholding)
    assert (release.fee, release.fee_tax, release.withholding, release.net) == (
        expected.fee, expected.fee_tax, expected.withholding, expected.net), release
    if not job.withholding:
        assert release.withholding.amount == 0
    cumulative[key] = before + release.gross


# Own profile names, so loading them never changes other tests' settings; each
# inherits the profile loaded at import (Hypothesis' `ci` under CI: derandomized).
settings.register_profile("ledger-ci", max_examples=300, stateful_step_count=60, deadline=None)
settings.register_profile("ledger-dev", max_examples=50, stateful_step_count=60, deadline=None)
LedgerMachine.TestCase.settings = settings.get_profile(
    "ledger-ci" if "CI" in os.environ else "ledger-dev")
TestLedgerMachine = LedgerMachine.TestCase
