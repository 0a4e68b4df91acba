"""The Part II payout endpoints over real projections (SPEC §10, §11): a party
(masked account, the address for auditors only), a closing's run and summary,
its Zengin file downloaded byte for byte, what it held or carried over (overdue
once a deadline passed), and a returned transfer holding its party."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from settlement.api.app import ApiConfig, create_app
from settlement.application.app import APPLIED, SettlementApplication
from settlement.banking.zengin import file_sha256
from settlement.core.commands import Command
from settlement.infra.postgres import create_database, drop_database, pg_env
from settlement.payouts.report import PayoutRunReport
from settlement.payouts.run import payout_run
from settlement.service.scenario import cloud_event, marketplace_day, marketplace_parties
from support.api import AUDITOR_TOKEN, FINANCE_TOKEN, TOKENS, project_all
from support.ingest import commands_of
from support.memory import POLICY

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

JST = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 11, 26, 9, tzinfo=JST)
CLOSED = datetime(2026, 12, 1, tzinfo=JST)
NOW = datetime(2027, 1, 26, tzinfo=JST)  # past worker-4's deadline, 2027-01-25 00:00 JST
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
FINANCE = {"Authorization": f"Bearer {FINANCE_TOKEN}"}


@pytest.fixture(scope="module")
def paid(pg_server: str) -> Iterator[tuple[str, PayoutRunReport]]:
    """The sample day with worker-2 unverified, the November closing, worker-1's
    payout settled then returned; projected."""
    url = create_database(pg_server, "api_payouts")
    app = SettlementApplication(pg_env(url))
    try:
        unverified = cloud_event("u-1", "party.updated", START, {
            "party_id": "worker-2", "kyc_verified": False})
        app.handle_batch(commands_of([*marketplace_parties(START, "d1"), unverified,
                                      *marketplace_day(START, "d1")]))
        report = payout_run(app, CLOSED, closing=date(2026, 11, 30), policy=POLICY)
        worker_1 = next(p.payout.payout_id for p in report.payouts if p.party_id == "worker-1")
        outcomes = app.handle_batch([
            Command.create("r-1", "payout.settled", CLOSED + timedelta(days=14),
                           {"payout_id": worker_1, "bank_ref": "b-1"}),
            Command.create("r-2", "payout.returned", CLOSED + timedelta(days=16),
                           {"payout_id": worker_1, "reason": "振込不能"})])
        assert [o.status for o in outcomes] == [APPLIED, APPLIED]
        with psycopg.connect(url, autocommit=True) as conn:
            project_all(app, conn)
    finally:
        app.close()
    yield url, report
    drop_database(pg_server, "api_payouts")


@pytest.fixture(scope="module")
def client(paid: tuple[str, PayoutRunReport]) -> Iterator[TestClient]:
    app = create_app(ApiConfig(paid[0], TOKENS, now=lambda: NOW))
    with TestClient(app) as test_client:
        yield test_client
    app.state.close()


def get(client: TestClient, path: str, headers: dict[str, str] | None = None,
        **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers or FINANCE)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_party_masked_with_its_address_for_auditors_only(client: TestClient) -> None:
    finance = get(client, "/v1/parties/worker-1")
    assert finance["bank_account"]["account_number"] == "****001"
    assert finance["address"] is None and finance["name_kana"] == "ヤマダ タロウ"
    assert finance["hold"] == "bank_account_returned"  # the returned transfer
    auditor = get(client, "/v1/parties/worker-1", AUDITOR)
    assert auditor["address"] == "東京都千代田区丸の内1-1-1"
    assert auditor["bank_account"]["account_number"] == "****001"
    assert client.get("/v1/parties/nobody", headers=FINANCE).json()["error"]["code"] == (
        "party_not_found")
    assert client.get("/v1/parties/worker-1").status_code == 401


def test_the_run_and_its_file(client: TestClient, paid: tuple[str, PayoutRunReport]) -> None:
    report = paid[1]
    run = get(client, "/v1/payout-runs/closing-2026-11-30")
    assert (run["closing"], run["payment_day"], run["status"]) == (
        "2026-11-30", "2026-12-15", "completed")
    [summary_file] = run["summary"]["files"]
    assert summary_file["sha256"] == report.files[0].sha256
    assert (summary_file["transfers"], summary_file["total"]) == (3, "137677")
    download = client.get("/v1/payout-runs/closing-2026-11-30/zengin", headers=FINANCE)
    assert download.status_code == 200
    assert download.content == report.files[0].content
    assert file_sha256(download.content) == download.headers["x-content-sha256"]
    assert download.content.endswith(b"9" + b" " * 119 + b"\r\n")
    missing = client.get("/v1/payout-runs/run-none/zengin", headers=FINANCE)
    assert missing.status_code == 404


def test_what_the_run_held_and_carried_over(client: TestClient) -> None:
    body = get(client, "/v1/payouts/held")
    assert body["run_id"] == "closing-2026-11-30"
    rows = {row["party_id"]: row for row in body["holds"]}
    assert {p: (r["reason"], r["status"], r["amount"]) for p, r in rows.items()} == {
        "worker-2": ("kyc_missing", "held", "33400"),
        "worker-4": ("below_minimum", "carried_over", "836")}
    # worker-2's milestone (delivered 2026-11-26) was due by 2027-01-25: overdue now.
    assert rows["worker-2"]["overdue"] and rows["worker-4"]["overdue"]
    assert body["totals"] == [{"currency": "JPY", "held": "33400", "carried_over": "836",
                               "overdue": "34236"}]
    csv = client.get("/v1/payouts/held", headers={**FINANCE, "Accept": "text/csv"}).text
    assert csv.splitlines()[0] == "party_type,party_id,currency,amount,reason,status,due_by," \
                                  "overdue"
    only = get(client, "/v1/payouts/held", reason="kyc_missing")["holds"]
    assert [row["party_id"] for row in only] == ["worker-2"]
