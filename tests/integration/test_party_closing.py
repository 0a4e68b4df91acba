"""Parties and jobs through Kafka to a closing and back (SPEC §10, §11): bad party
events refused with their codes (changing nothing), the closing's Zengin file,
the bank's results (settled, failed, returned) through the input consumer and
the balances where they must be after each, the next closings; a closing killed
half way and run again writes the same file and pays nobody twice; closings
started by several processes at once run once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from settlement.application.app import SettlementApplication
from settlement.application.parties import load_parties
from settlement.infra.failpoints import KILLED_EXIT_CODE
from settlement.infra.postgres import create_database, drop_database, pg_env
from settlement.infra.topics import Topics
from settlement.ingest.publisher import MarketplacePublisher
from settlement.ledger.balances import trial_balances
from settlement.payouts.closing import closing_pass
from settlement.payouts.events import PayoutInitiated
from settlement.payouts.policy import load_policy
from settlement.payouts.report import PayoutRunReport
from settlement.payouts.run import AFTER_PARTY_SAVED, payout_run
from settlement.service.scenario import (
    bank_account,
    cloud_event,
    marketplace_day,
    marketplace_parties,
)
from support.ingest import commands_of, ingest, publish, read_topic

JST = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 11, 26, 9, tzinfo=JST)
CLOSED = datetime(2026, 12, 1, tzinfo=JST)
NOVEMBER, MID_DECEMBER, DECEMBER = date(2026, 11, 30), date(2026, 12, 15), date(2026, 12, 31)
PROCESS_TIMEOUT_S = 120
ACCOUNT = bank_account("1234567", "ヤマダ")


def party(event_id: str, type_: str = "party.registered", **data: Any) -> dict[str, Any]:
    base = {"party_id": "worker-x", "kind": "individual", "name": "x", "name_kana": "ｴｯｸｽ"}
    if type_ == "party.updated":
        base = {"party_id": data.pop("party_id", "worker-1")}
    return cloud_event(event_id, type_, START, {**base, **data})


BAD_PARTIES = [  # valid records that break a rule: refused with a code, nothing changed
    (party("b-1", invoice_registration_number="T123"), "invalid_registration_number"),
    (party("b-2", kind="corporation", invoice_registration_number="T1000012050002"),
     "registration_check_digit"),
    (party("b-3", bank_account={**ACCOUNT, "bank_code": "12a4"}), "bank_code_format"),
    (party("b-4", bank_account={**ACCOUNT, "account_number": "12345678"}),
     "account_number_format"),
    (party("b-5", name_kana="山田"), "name_kana_format"),
    (party("b-6", "party.updated", bank_account={**ACCOUNT, "branch_code": "1"}),
     "branch_code_format"),
    (party("b-7", "party.updated", party_id="nobody", kyc_verified=True), "unknown_party"),
    (party("b-8", party_id="worker-1"), "party_exists"),
]


def publish_raw(broker: str, topics: Topics, value: bytes) -> None:
    async def run() -> None:
        async with MarketplacePublisher(broker, topics) as publisher:
            await publisher.publish_raw(topics.parties, "worker-z", value)
            await publisher.flush()

    asyncio.run(run())


def balances(app: SettlementApplication) -> dict[str, Decimal]:
    events = [app.mapper.to_domain_event(n)
              for n in app.recorder.select_notifications(start=1, limit=1_000_000)]
    ledger = trial_balances(p for e in events for p in getattr(e, "postings", ()))["JPY"]
    assert ledger.balanced
    return {a.account: a.balance for a in ledger.accounts}


def payable(app: SettlementApplication, party_id: str) -> Decimal:
    return balances(app).get(f"liabilities:worker_payable:{party_id}", Decimal(0))


def result(event_id: str, type_: str, payout_id: str, days: int, **data: str) -> dict[str, Any]:
    return cloud_event(event_id, type_, CLOSED + timedelta(days=days),
                       {"payout_id": payout_id, **data})


def paid(report: PayoutRunReport) -> dict[str, str]:
    return {p.party_id: p.payout.payout_id for p in report.payouts}


def test_parties_and_jobs_through_kafka_to_a_closing_and_back(
        owner_app: SettlementApplication, broker: str, topics: Topics) -> None:
    app, policy = owner_app, load_policy()
    publish(broker, topics, [*marketplace_parties(START, "k"), *marketplace_day(START, "k"),
                             *[event for event, _ in BAD_PARTIES]])
    publish_raw(broker, topics, orjson.dumps(party("b-9", kyc_verified="yes")))
    stats = ingest(app, broker, topics)
    assert (stats.rejected, stats.dead_lettered) == (len(BAD_PARTIES), 1)
    notices = [orjson.loads(r.value) for r in read_topic(broker, topics.rejections,
                                                          len(BAD_PARTIES))]
    assert sorted((n["data"]["causation_id"], n["data"]["code"]) for n in notices) == sorted(
        (event["id"], code) for event, code in BAD_PARTIES)
    [letter] = [orjson.loads(r.value) for r in read_topic(broker, topics.parties_dlq, 1)]
    assert letter["error"]["code"] == "schema_invalid"
    parties = load_parties(app, ["worker-x", "worker-1"])
    assert parties["worker-x"] is None  # every bad registration changed nothing
    record = parties["worker-1"].record  # type: ignore[union-attr]
    assert record.bank_account is not None and record.bank_account.branch_code == "001"

    november = payout_run(app, CLOSED, closing=NOVEMBER, policy=policy)
    [file] = november.files
    assert (file.transfers, file.total) == (4, 171_077)
    stored = app.store.select_file(november.run_id, "JPY")
    assert stored is not None and stored.content == file.content
    cash = balances(app)["assets:safeguarded_cash"]

    ids = paid(november)
    publish(broker, topics, [
        result("r-1", "payout.settled", ids["worker-1"], 4, bank_ref="b-1"),
        result("r-2", "payout.failed", ids["worker-3"], 4, reason="口座解約"),
        result("r-3", "payout.settled", ids["worker-2"], 4, bank_ref="b-3"),
        result("r-4", "payout.returned", ids["worker-2"], 6, reason="組戻し"),
        result("r-5", "payout.returned", ids["worker-3"], 6, reason="x")])  # failed: refused
    stats = ingest(app, broker, topics)
    assert stats.rejected == 1
    after = balances(app)
    assert (payable(app, "worker-1"), payable(app, "worker-2"), payable(app, "worker-3")) == (
        0, 33_400, 8_350)
    assert after["liabilities:payouts_in_transit"] == 29_000  # client-a's, unanswered
    assert after["assets:safeguarded_cash"] == cash - 100_327  # worker-2's went and came back
    worker_2 = load_parties(app, ["worker-2"])["worker-2"]
    assert worker_2 is not None and worker_2.record.hold == "bank_account_returned"

    mid = payout_run(app, CLOSED + timedelta(days=15), closing=MID_DECEMBER, policy=policy)
    assert set(paid(mid)) == {"worker-3"}
    assert {h.party_id: h.reason for h in mid.held} == {
        "worker-2": "bank_account_returned", "worker-4": "below_minimum"}

    publish(broker, topics, [party("u-1", "party.updated", party_id="worker-2",
                                   bank_account=bank_account("7654321", "サトウ ハナコ"))])
    ingest(app, broker, topics)
    end = payout_run(app, CLOSED + timedelta(days=31), closing=DECEMBER, policy=policy)
    again = {p.party_id: p.payout for p in end.payouts}
    assert set(again) == {"worker-2", "worker-4"}  # worker-4: due by 01-25, paid now
    account = again["worker-2"].bank_account
    assert account is not None and account.account_number == "7654321"
    assert again["worker-2"].amount.amount == 33_400
    assert payable(app, "worker-2") == payable(app, "worker-4") == 0


def run_process(database_url: str, cwd: Path, *args: str,
                failpoints: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": database_url,
           "SETTLEMENT_FAILPOINTS": failpoints}
    return subprocess.run([sys.executable, "-m", "settlement.cli.payouts", "run",
                           "--closing", NOVEMBER.isoformat(), "--now", CLOSED.isoformat(),
                           "--batch-parties", "1", *args],
                          env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=PROCESS_TIMEOUT_S, check=False)


def sample_day(app: SettlementApplication) -> None:
    # The last event dated after the closing's day: by the events' time, it has ended.
    late = cloud_event("late-1", "party.updated", CLOSED + timedelta(hours=1),
                       {"party_id": "worker-5", "kyc_verified": False})
    app.handle_batch(commands_of([*marketplace_parties(START, "s"),
                                  *marketplace_day(START, "s"), late]))


def initiated(app: SettlementApplication) -> Counter[str]:
    return Counter(event.account for event in (
        app.mapper.to_domain_event(n)
        for n in app.recorder.select_notifications(start=1, limit=1_000_000))
        if isinstance(event, PayoutInitiated))


def test_a_closing_killed_half_way_writes_the_same_file_and_pays_nobody_twice(
        app: SettlementApplication, database_url: str, pg_server: str, tmp_path: Path) -> None:
    sample_day(app)
    path = tmp_path / "closing.zengin"
    killed = run_process(database_url, tmp_path, "--zengin", str(path),
                         failpoints=f"{AFTER_PARTY_SAVED}=2")
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr
    assert not path.exists() and sum(initiated(app).values()) == 2
    done = run_process(database_url, tmp_path, "--zengin", str(path))
    assert done.returncode == 0, done.stderr
    assert set(initiated(app).values()) == {1} and len(initiated(app)) == 4

    name = "closing_reference"
    reference = SettlementApplication(pg_env(create_database(pg_server, name)))
    try:
        sample_day(reference)
        whole = payout_run(reference, CLOSED, closing=NOVEMBER, policy=load_policy())
    finally:
        reference.close()
        drop_database(pg_server, name)
    assert path.read_bytes() == whole.files[0].content
    stored = app.store.select_file("closing-2026-11-30", "JPY")
    assert stored is not None and stored.content == whole.files[0].content
    again = run_process(database_url, tmp_path, "--zengin", str(tmp_path / "again"))
    assert '"repeated": true' in again.stdout
    assert (tmp_path / "again").read_bytes() == whole.files[0].content


def test_closings_started_by_several_processes_run_once(
        app: SettlementApplication, es_env: dict[str, str]) -> None:
    sample_day(app)
    apps = [SettlementApplication(es_env) for _ in range(3)]
    try:
        with ThreadPoolExecutor(len(apps)) as pool:
            reports = list(pool.map(
                lambda each: closing_pass(each, datetime(2027, 1, 1, tzinfo=JST), load_policy()),
                apps))
        assert closing_pass(apps[0], datetime(2027, 1, 1, tzinfo=JST)) is None  # done
    finally:
        for each in apps:
            each.close()
    assert {r.run_id for r in reports if r is not None} == {"closing-2026-11-30"}
    assert len({r.files[0].sha256 for r in reports if r is not None}) == 1
    assert set(initiated(app).values()) == {1} and len(initiated(app)) == 4
