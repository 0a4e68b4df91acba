"""The seeded marketplace load of `bench/soak.py`: parties, then jobs of every
format with fundings, deliveries, revisions, releases, cancellations, refunds,
disputes and awards, in two phases around payout runs, each payout run followed
by the bank's results (settled, failed or none yet).

Everything is drawn from the seed, so a seed is the same load on every run and
every machine; only `start` (the events' time) comes from the caller, the same
for the baseline and the disturbed run of one soak.

Send order: each phase is a list of slices, each slice at most one event of a
job, slices in order. A marketplace that sends a slice again after a failure (a
broker that was away) then delivers a job's events in order, some of them twice
(a duplicate changes nothing), never one before an earlier one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from settlement.service.scenario import bank_account, cloud_event

Event = dict[str, Any]
FLAT_CLIENT_FEE = Decimal("1.055")  # the flat plan's client fee on top (SPEC fee plans)
HOLDERS = ("ヤマダ タロウ", "サトウ ハナコ", "スズキ イチロウ", "タナカ ミキ", "カ）エーシー")


def _jpy(amount: int | Decimal) -> dict[str, str]:
    return {"amount": str(amount), "currency": "JPY"}


def _funding(amount: int, plan: str) -> int:
    """What the client pays in: the amount, and the flat plan's fee on top."""
    return int(amount * FLAT_CLIENT_FEE) if plan == "flat" else amount


@dataclass(frozen=True)
class PayoutRun:
    """A payout run the marketplace operator starts once everything before it is in."""

    run_id: str
    at: datetime


@dataclass
class Load:
    """What one soak feeds the service, step by step: a list of slices to publish
    (then wait until each is stored), or a payout run (then publish its results)."""

    seed: int
    start: datetime
    steps: list[list[list[Event]] | PayoutRun] = field(default_factory=list)

    @property
    def events(self) -> list[Event]:
        return [event for step in self.steps if isinstance(step, list)
                for chunk in step for event in chunk]


def parties(rng: random.Random, start: datetime, clients: int, workers: int) -> list[Event]:
    """`party.registered` of every client and worker; about one worker in eight has
    no verified account (its payouts are held)."""
    rows: list[dict[str, Any]] = []
    for n in range(clients):
        rows.append({"party_id": f"client-{n}", "kind": "corporation", "name": f"顧客{n}株式会社",
                     "name_kana": "カブシキガイシャコキャク",
                     "bank_account": bank_account(f"1{n:06d}", "カ）コキャク"),
                     "kyc_verified": True})
    for n in range(workers):
        verified = rng.random() > 0.125
        row: dict[str, Any] = {"party_id": f"worker-{n}", "kind": "individual",
                               "name": f"作業者 {n}", "name_kana": HOLDERS[n % 4],
                               "kyc_verified": verified}
        if verified:
            row["bank_account"] = bank_account(f"2{n:06d}", HOLDERS[n % 4],
                                               rng.choice(("0001", "0005", "0009")))
        rows.append(row)
    return [cloud_event(f"soak-party-{row['party_id']}", "party.registered",
                        start + timedelta(seconds=n), row) for n, row in enumerate(rows)]


def project(rng: random.Random, job: str, client: str, workers: Sequence[str]) -> list[tuple]:
    plan = rng.choice(("tiered", "tiered", "flat"))
    milestones = [(f"m{k}", rng.randrange(5, 200) * 1000) for k in range(1, rng.randint(1, 3) + 1)]
    rows: list[tuple] = [("project.contracted", {
        "job_id": job, "client_id": client, "worker_id": rng.choice(workers), "fee_plan": plan,
        "withholding": rng.random() < 0.3,
        "milestones": [{"milestone_id": m, "amount": _jpy(a)} for m, a in milestones]})]
    for m, amount in milestones:
        rows.append(("project.milestone_funded", {"job_id": job, "milestone_id": m,
                                                  "amount": _jpy(_funding(amount, plan)),
                                                  "payment_ref": f"pay-{job}-{m}"}))
        outcome = rng.choices(("accept", "revise", "cancel", "dispute", "open"),
                              (5, 2, 1, 2, 1))[0]
        delivered = ("project.milestone_delivered", {"job_id": job, "milestone_id": m})
        if outcome == "cancel":
            rows.append(("project.milestone_cancelled", {"job_id": job, "milestone_id": m,
                                                         "reason": "scope cut"}))
        elif outcome == "open":
            rows.append(delivered)
        elif outcome == "dispute":
            worker_amount = rng.randrange(0, amount // 1000 + 1) * 1000
            rows += [delivered,
                     ("dispute.opened", {"job_id": job, "item_id": m,
                                         "opened_by": rng.choice(("client", "worker")),
                                         "reason": "incomplete"}),
                     ("dispute.resolved", {"job_id": job, "item_id": m,
                                           "worker_amount": _jpy(worker_amount),
                                           "client_amount": _jpy(amount - worker_amount)})]
        else:
            if outcome == "revise":
                rows += [delivered, ("project.revision_requested", {
                    "job_id": job, "milestone_id": m, "reason": "colours"})]
            rows += [delivered, ("project.milestone_accepted", {"job_id": job,
                                                                "milestone_id": m})]
    return rows


def competition(rng: random.Random, job: str, client: str, workers: Sequence[str],
                start: datetime) -> list[tuple]:
    plan, guaranteed = rng.choice(("tiered", "flat")), rng.random() < 0.7
    prize = rng.randrange(10, 100) * 1000
    entries = [f"e{k}" for k in range(1, rng.randint(1, 4) + 1)]
    rows: list[tuple] = [
        ("competition.opened", {"job_id": job, "client_id": client, "fee_plan": plan,
                                "prize": _jpy(prize), "guaranteed": guaranteed,
                                "entry_deadline": (start + timedelta(days=20)).isoformat(),
                                "award_deadline": (start + timedelta(days=30)).isoformat()}),
        ("competition.funded", {"job_id": job, "amount": _jpy(_funding(prize, plan)),
                                "payment_ref": f"pay-{job}"}),
        *(("competition.entry_submitted", {"job_id": job, "entry_id": e,
                                           "worker_id": rng.choice(workers)}) for e in entries)]
    if not guaranteed and rng.random() < 0.4:
        rows.append(("competition.cancelled", {"job_id": job, "reason": "brief withdrawn"}))
    elif rng.random() < 0.85:
        first = prize if len(entries) == 1 else rng.randrange(prize // 2000, prize // 1000) * 1000
        awards = [{"entry_id": entries[0], "amount": _jpy(first)}]
        if first < prize:
            awards.append({"entry_id": entries[1], "amount": _jpy(prize - first)})
        rows.append(("competition.awarded", {"job_id": job, "awards": awards}))
    return rows


def task(rng: random.Random, job: str, client: str, workers: Sequence[str]) -> list[tuple]:
    plan, quantity, unit = rng.choice(("tiered", "flat")), rng.randint(2, 6), 1000
    rows: list[tuple] = [
        ("task.opened", {"job_id": job, "client_id": client, "fee_plan": plan,
                         "unit_price": _jpy(unit), "quantity": quantity}),
        ("task.funded", {"job_id": job, "amount": _jpy(_funding(unit * quantity, plan)),
                         "payment_ref": f"pay-{job}"})]
    for k in range(1, rng.randint(1, quantity) + 1):
        s = f"s{k}"
        rows.append(("task.submission_received", {"job_id": job, "submission_id": s,
                                                  "worker_id": rng.choice(workers)}))
        outcome = rng.choices(("approve", "reject", "dispute"), (6, 2, 1))[0]
        if outcome == "approve":
            rows.append(("task.submission_approved", {"job_id": job, "submission_id": s}))
        elif outcome == "reject":
            rows.append(("task.submission_rejected", {"job_id": job, "submission_id": s,
                                                      "reason": "blurry"}))
        else:
            rows += [("dispute.opened", {"job_id": job, "item_id": s, "opened_by": "client",
                                         "reason": "off brief"}),
                     ("dispute.resolved", {"job_id": job, "item_id": s,
                                           "worker_amount": _jpy(400),
                                           "client_amount": _jpy(600)})]
    if rng.random() < 0.5:
        rows.append(("task.closed", {"job_id": job}))
    return rows


def jobs(rng: random.Random, phase: int, count: int, clients: int, workers: int,
         start: datetime) -> list[list[tuple]]:
    """`count` jobs of every format, each its rows (type, data) in order."""
    names = [f"worker-{n}" for n in range(workers)]
    out = []
    for n in range(count):
        job, client = f"soak-{phase}-{n:04d}", f"client-{rng.randrange(clients)}"
        kind = rng.choices(("project", "competition", "task"), (5, 2, 3))[0]
        if kind == "project":
            out.append(project(rng, job, client, names))
        elif kind == "competition":
            out.append(competition(rng, job, client, names, start))
        else:
            out.append(task(rng, job, client, names))
    return out


def slices(rows_of_jobs: Sequence[Sequence[tuple]], prefix: str, start: datetime,
           size: int) -> list[list[Event]]:
    """The jobs' events round by round (a job's k-th event in round k), each round cut
    in slices of at most `size`; event times one second apart in that order."""
    rounds: Iterator[list[tuple[int, int, tuple]]] = (
        [(j, k, rows[k]) for j, rows in enumerate(rows_of_jobs) if k < len(rows)]
        for k in range(max((len(rows) for rows in rows_of_jobs), default=0)))
    out: list[list[Event]] = []
    at = 0
    for round_ in rounds:
        for first in range(0, len(round_), size):
            chunk = []
            for j, k, (type_, data) in round_[first:first + size]:
                chunk.append(cloud_event(f"{prefix}-{j:04d}-{k:02d}", type_,
                                         start + timedelta(seconds=at), data))
                at += 1
            out.append(chunk)
    return out


def build(seed: int, start: datetime, jobs_per_phase: int, slice_events: int = 20) -> Load:
    """The load of `seed`: parties, phase 1, payout run 1, phase 2, payout run 2. Times:
    within two hours after `start`."""
    rng = random.Random(seed)
    clients, workers = max(2, jobs_per_phase // 8), max(3, jobs_per_phase // 3)
    party_events = parties(rng, start, clients, workers)
    load = Load(seed, start)
    load.steps.append([party_events[n:n + slice_events]
                       for n in range(0, len(party_events), slice_events)])
    for phase, (from_min, pay_min) in enumerate(((5, 55), (60, 115)), start=1):
        rows = jobs(rng, phase, jobs_per_phase, clients, workers, start)
        load.steps.append(slices(rows, f"soak-{phase}", start + timedelta(minutes=from_min),
                                 slice_events))
        load.steps.append(PayoutRun(f"soak-run-{phase}", start + timedelta(minutes=pay_min)))
    return load


def results(seed: int, run: PayoutRun, payout_ids: Sequence[str]) -> list[Event]:
    """The bank's answers to a payout run's batch: most settled, some failed, some not
    answered yet; drawn from the seed and the run, in the batch's order."""
    rng = random.Random(f"{seed}:{run.run_id}")
    out = []
    for n, payout_id in enumerate(sorted(payout_ids)):
        answer = rng.choices(("settled", "failed", "none"), (8, 1, 1))[0]
        at = run.at + timedelta(minutes=1, seconds=n)
        if answer == "settled":
            out.append(cloud_event(f"{run.run_id}-bank-{n}", "payout.settled", at,
                                   {"payout_id": payout_id, "bank_ref": f"bank-{n}"}))
        elif answer == "failed":
            out.append(cloud_event(f"{run.run_id}-bank-{n}", "payout.failed", at,
                                   {"payout_id": payout_id, "reason": "account closed"}))
    return out
