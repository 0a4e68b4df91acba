"""Payout runs and payout results on the real (embedded) PostgreSQL: exact amounts,
repeats, a later run, a crash between parties, concurrent runs, and results
through the application's command path. The sample day's parties are registered
and verified; worker-4's 836 yen is below the minimum and carried over."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from settlement.application.app import (
    APPLIED,
    DUPLICATE,
    REJECTED,
    SettlementApplication,
)
from settlement.core.commands import Command
from settlement.infra.bootstrap import owner_env
from settlement.infra.failpoints import KILLED_EXIT_CODE
from settlement.infra.topics import Topics
from settlement.ledger.balances import trial_balances
from settlement.payouts.closing import run_payouts_cli
from settlement.payouts.events import PayoutInitiated
from settlement.payouts.report import PayoutRunReport
from settlement.payouts.run import AFTER_PARTY_SAVED, payout_run
from settlement.payouts.scan import LedgerScan
from settlement.relay.service import Relay
from settlement.service.scenario import marketplace_day, marketplace_parties
from support.ingest import commands_of, read_topic

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 27, tzinfo=UTC)
# Worked out by hand in tests/unit/test_payouts_run.py.
DAY_PAYABLE = {"liabilities:client_refundable:client-a": 29_000,
               "liabilities:worker_payable:worker-1": 100_327,
               "liabilities:worker_payable:worker-2": 33_400,
               "liabilities:worker_payable:worker-3": 8_350}
CARRIED = {"liabilities:worker_payable:worker-4": 836}  # below the ¥1,000 minimum
PROCESS_TIMEOUT_S = 120


# Payout results go through the application's own command path.
PayoutApp = SettlementApplication


@pytest.fixture
def app(es_env: dict[str, str]) -> Iterator[PayoutApp]:
    application = PayoutApp({**es_env, **owner_env()})
    application.handle_batch(commands_of(marketplace_parties(START, "d1")
                                         + marketplace_day(START, "d1")))
    yield application
    application.close()


@pytest.fixture
def other_app(es_env: dict[str, str]) -> Iterator[PayoutApp]:
    """A second process's view of the same database."""
    application = PayoutApp(es_env)
    yield application
    application.close()


def stored(app: SettlementApplication) -> list[Any]:
    return [app.mapper.to_domain_event(n)
            for n in app.recorder.select_notifications(start=1, limit=1_000_000)]


def balances(app: SettlementApplication) -> dict[str, Decimal]:
    """Every account's JPY balance over every stored event; checks it all balances."""
    tb = trial_balances(p for e in stored(app) for p in getattr(e, "postings", ()))["JPY"]
    assert tb.balanced
    return {a.account: a.balance for a in tb.accounts}


def initiated(app: SettlementApplication) -> dict[str, list[Decimal]]:
    """The amounts of every payout ever initiated, per account paid from."""
    out: dict[str, list[Decimal]] = defaultdict(list)
    for event in stored(app):
        if isinstance(event, PayoutInitiated):
            out[event.account].append(event.amount.amount)
    return dict(out)


def paid(report: PayoutRunReport) -> dict[str, int]:
    return {line.account: int(line.amount.amount) for line in report.created}


def result(type_: str, command_id: str, **data: str) -> Command:
    return Command.create(command_id, type_, NOW + timedelta(days=1), data)


def test_one_payout_per_party_with_exact_amounts(app: PayoutApp) -> None:
    report = payout_run(app, NOW)
    assert paid(report) == DAY_PAYABLE
    after = balances(app)
    assert all(after[account] == 0 for account in DAY_PAYABLE)
    assert after["liabilities:payouts_in_transit"] == sum(DAY_PAYABLE.values())
    assert initiated(app) == {a: [Decimal(v)] for a, v in DAY_PAYABLE.items()}


def test_a_repeated_run_is_a_no_op(app: PayoutApp, other_app: PayoutApp) -> None:
    first = payout_run(app, NOW)
    head = app.recorder.max_notification_id()
    again = payout_run(other_app, NOW)
    assert again.created == [] and again.batch == first.batch
    assert app.recorder.max_notification_id() == head


def test_a_later_run_pays_only_the_new_releases(app: PayoutApp) -> None:
    payout_run(app, NOW)
    app.handle_batch(commands_of(marketplace_day(START + timedelta(days=1), "d2")))
    later = payout_run(app, NOW + timedelta(days=1))
    carried = {a: 2 * v for a, v in CARRIED.items()}  # two days reach the minimum
    assert paid(later) == {**DAY_PAYABLE, **carried}
    assert initiated(app) == {**{a: [Decimal(v)] * 2 for a, v in DAY_PAYABLE.items()},
                              **{a: [Decimal(v)] for a, v in carried.items()}}


def run_process(database_url: str, cwd: Path, *args: str,
                failpoints: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": database_url,
           "SETTLEMENT_FAILPOINTS": failpoints}
    return subprocess.run([sys.executable, "-m", "settlement.cli.payouts", "run",
                           "--batch-parties", "1", *args],
                          env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=PROCESS_TIMEOUT_S, check=False)


@pytest.mark.parametrize("rerun_now", [NOW, NOW + timedelta(hours=1)],
                         ids=["same_run", "new_run"])
def test_a_run_killed_between_parties_is_finished_by_a_rerun(
        app: PayoutApp, database_url: str, tmp_path: Path, rerun_now: datetime) -> None:
    csv_path = tmp_path / "batch.csv"
    killed = run_process(database_url, tmp_path, "--now", NOW.isoformat(), "--csv",
                         str(csv_path), failpoints=f"{AFTER_PARTY_SAVED}=2")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr
    assert not csv_path.exists()
    assert len(initiated(app)) == 2  # two parties stored, then the process died

    with open(os.devnull, "w") as quiet:
        assert run_payouts_cli(app, rerun_now, csv_path, out=quiet) == 0
    assert initiated(app) == {a: [Decimal(v)] for a, v in DAY_PAYABLE.items()}
    rows = csv_path.read_text().splitlines()[1:]
    # The same run finishes and exports the whole batch; a new run exports its own part.
    assert len(rows) == (4 if rerun_now == NOW else 2)


def test_the_cli_process_exports_the_batch(app: PayoutApp, database_url: str,
                                           tmp_path: Path) -> None:
    csv_path = tmp_path / "batch.csv"
    done = run_process(database_url, tmp_path, "--now", "2026-11-27T00:00:00Z",
                       "--csv", str(csv_path))
    assert done.returncode == 0, done.stderr
    assert '"created": 4' in done.stdout and '"JPY": "171077"' in done.stdout
    rows = [row.split(",") for row in csv_path.read_text().splitlines()[1:]]
    assert {row[5]: int(row[3]) for row in rows} == DAY_PAYABLE


class BarrierScan(LedgerScan):
    """A scan whose first read waits until every competing run has read too."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self.barrier, self.waited = barrier, False

    def advance(self, app: Any, *turned: Any) -> int:
        read = super().advance(app, *turned)
        if not self.waited:
            self.waited = True
            self.barrier.wait(timeout=60)
        return read


def test_concurrent_runs_never_pay_a_party_twice(app: PayoutApp, es_env: dict[str, str]) -> None:
    runners = 4
    apps = [PayoutApp(es_env) for _ in range(runners)]
    barrier = threading.Barrier(runners)
    try:
        with ThreadPoolExecutor(runners) as pool:
            reports = list(pool.map(
                lambda n: payout_run(apps[n], NOW, f"run-{n}", scan=BarrierScan(barrier)),
                range(runners)))
    finally:
        for each in apps:
            each.close()
    assert sum(r.conflicts for r in reports) >= runners - 1  # all decided on the same view
    assert all(r.failed == [] for r in reports)
    assert initiated(app) == {a: [Decimal(v)] for a, v in DAY_PAYABLE.items()}
    assert sum(len(r.created) for r in reports) == len(DAY_PAYABLE)


def test_a_failed_payout_returns_the_money_and_the_next_run_pays_it(
        app: PayoutApp, other_app: PayoutApp) -> None:
    first = {line.account: line.payout_id for line in payout_run(other_app, NOW).created}
    worker_2 = first["liabilities:worker_payable:worker-2"]
    [outcome] = app.handle_batch([result("payout.failed", "res-1", payout_id=worker_2,
                                         reason="account closed")])
    assert outcome.status == APPLIED
    assert balances(app)["liabilities:worker_payable:worker-2"] == 33_400
    assert payout_run(other_app, NOW).created == []  # the same run stays a no-op
    again = payout_run(other_app, NOW + timedelta(days=1))
    assert paid(again) == {"liabilities:worker_payable:worker-2": 33_400}
    # The owner cached worker-2's stream before the new payout: it must still find it.
    [settled] = app.handle_batch([result("payout.settled", "res-2",
                                         payout_id=again.created[0].payout_id, bank_ref="b-2")])
    assert settled.status == APPLIED, settled.error
    assert balances(app)["liabilities:worker_payable:worker-2"] == 0


def test_a_settled_payout_moves_the_money_out_of_cash(app: PayoutApp) -> None:
    first = {line.account: line.payout_id for line in payout_run(app, NOW).created}
    cash = balances(app)["assets:safeguarded_cash"]
    worker_1 = first["liabilities:worker_payable:worker-1"]
    settle = result("payout.settled", "res-1", payout_id=worker_1, bank_ref="bank-1")
    outcomes = app.handle_batch([
        settle, settle,
        result("payout.failed", "res-2", payout_id=worker_1, reason="late"),
        result("payout.settled", "res-3", payout_id="po-nothing", bank_ref="bank-1"),
    ])
    assert [(o.status, o.error.code if o.error else None) for o in outcomes] == [
        (APPLIED, None), (DUPLICATE, None), (REJECTED, "payout_already_settled"),
        (REJECTED, "unknown_payout")]
    after = balances(app)
    assert after["assets:safeguarded_cash"] == cash - 100_327
    assert after["liabilities:payouts_in_transit"] == sum(DAY_PAYABLE.values()) - 100_327
    assert payout_run(app, NOW + timedelta(days=1)).created == []


def test_a_crashed_run_finished_by_a_rerun_is_published_once_per_payout(
        app: PayoutApp, database_url: str, tmp_path: Path, broker: str, topics: Topics) -> None:
    """Killed between creating payouts and publishing them, rerun: each party paid
    once, and the relay publishes every `settlement.payout_initiated`, keyed by its
    payout id."""
    killed = run_process(database_url, tmp_path, "--now", NOW.isoformat(),
                         failpoints=f"{AFTER_PARTY_SAVED}=3")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr
    with open(os.devnull, "w") as quiet:
        assert run_payouts_cli(app, NOW, None, out=quiet) == 0
    assert initiated(app) == {a: [Decimal(v)] for a, v in DAY_PAYABLE.items()}

    relay = Relay(app, broker, topics)
    asyncio.run(relay.run(asyncio.Event(), idle_exit_s=1.0))
    head = app.recorder.max_notification_id() or 0
    published = [orjson.loads(r.value or b"") for r in read_topic(broker, topics.events, 1)]
    payouts = [e for e in published if e["type"] == "settlement.payout_initiated"]
    assert len(payouts) == len(DAY_PAYABLE)
    assert {e["data"]["account"]: int(e["data"]["amount"]["amount"]) for e in payouts} == \
        DAY_PAYABLE
    assert all(e["subject"] == e["data"]["payout_id"] for e in payouts)
    assert max(e["data"]["position"] for e in published) <= head
