"""Tax documents over real projections (SPEC §12): a payout's payment statement
(JSON, CSV, PDF checked as text and as pixels), a month's withholding per client
with its due date and 所得税徴収高計算書 data, the year's 支払調書 rows (the
address for auditors only), a remittance remitted twice (adding nothing) and
confirmed; then replay equals the live projections and the chain verifies.

Hand-computed from the sample day (tiered plan, withholding): worker-1's m1,
G 110,000 with tax 10,000: fee 21,000, fee tax 2,100, B 100,000, W 10,210, net
76,690; its m2 dispute share, G 30,000 (cumulative 140,000): fee 3,000, fee tax
300, W 3,063, net 23,637. client-a withheld 13,273 in 2026-11, from 1 worker,
支給額 140,000; due 2026-12-10 (a Thursday).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from settlement.api.app import ApiConfig, create_app
from settlement.api.queries import reconciliation
from settlement.application.app import APPLIED, REJECTED, SettlementApplication
from settlement.audit.verify import verify_chain
from settlement.cli.main import main
from settlement.core.commands import Command
from settlement.core.errors import Rejected
from settlement.core.months import Month
from settlement.infra.postgres import create_database, drop_database, pg_env
from settlement.payouts.run import payout_run
from settlement.projections.rebuild.replay import replay
from settlement.reconcile.matching import DEBIT, REMITTANCE, Expected
from settlement.service.scenario import marketplace_day, marketplace_parties
from settlement.tax.remit import confirm, remit_month
from settlement.tax.withholding import parse_month
from support.api import AUDITOR_TOKEN, FINANCE_TOKEN, TOKENS, project_all
from support.ingest import commands_of
from support.memory import POLICY

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

JST = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 11, 26, 9, tzinfo=JST)
CLOSED = datetime(2026, 12, 1, tzinfo=JST)
NOW = datetime(2026, 12, 5, tzinfo=JST)
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
FINANCE = {"Authorization": f"Bearer {FINANCE_TOKEN}"}
NOVEMBER = Month(2026, 11)


@pytest.fixture(scope="module")
def world(pg_server: str) -> Iterator[tuple[str, SettlementApplication, str]]:
    url = create_database(pg_server, "tax_documents")
    app = SettlementApplication(pg_env(url))
    try:
        app.handle_batch(commands_of([*marketplace_parties(START, "t1"),
                                      *marketplace_day(START, "t1")]))
        report = payout_run(app, CLOSED, closing=date(2026, 11, 30), policy=POLICY)
        worker_1 = next(p.payout.payout_id for p in report.payouts if p.party_id == "worker-1")
        with psycopg.connect(url, autocommit=True) as conn:
            project_all(app, conn)
        yield url, app, worker_1
    finally:
        app.close()
        drop_database(pg_server, "tax_documents")


def client(url: str) -> TestClient:
    return TestClient(create_app(ApiConfig(url, TOKENS, now=lambda: NOW)))


def test_statement_json_csv_and_pdf(world: tuple[str, SettlementApplication, str],
                                    tmp_path: Path) -> None:
    url, _, payout_id = world
    with client(url) as api:
        body = api.get(f"/v1/statements/{payout_id}", headers=FINANCE).json()
        csv = api.get(f"/v1/statements/{payout_id}",
                      headers={**FINANCE, "Accept": "text/csv"}).text
        pdf = api.get(f"/v1/statements/{payout_id}/pdf", headers=FINANCE)
        again = api.get(f"/v1/statements/{payout_id}/pdf", headers=FINANCE)
        missing = api.get("/v1/statements/po-nothing", headers=FINANCE)
        listed = api.get("/v1/payouts", headers=FINANCE).json()["payouts"]
    assert [(i["item_id"], i["gross"], i["fee"], i["fee_tax"], i["withholding"], i["net"])
            for i in body["items"]] == [("m1", "110000", "21000", "2100", "10210", "76690"),
                                        ("m2", "30000", "3000", "300", "3063", "23637")]
    assert body["totals"] == {"gross": "140000", "fee": "24000", "fee_tax": "2400",
                              "withholding": "13273", "net": "100327"}
    assert (body["amount"], body["transfer_fee"], body["sent"]) == ("100327", "0", "100327")
    assert body["bank_account"]["account_number"] == "****001"
    assert "2000001" not in csv and "2000001" not in str(body)
    assert csv.splitlines()[0] == "line,job_id,item_id,gross,fee,fee_tax,withholding,net"
    assert csv.splitlines()[-1] == "sent,,,,,,,100327"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "payout_not_found"
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == again.content  # the same bytes on every render
    row = next(p for p in listed if p["payout_id"] == payout_id)
    assert (row["transfer_fee"], row["sent"]) == ("0", row["amount"])
    path = tmp_path / "statement.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run([shutil.which("pdftotext") or "pdftotext", str(path), "-"],
                          check=True, capture_output=True, text=True).stdout
    for shown in ("支払明細書", "100327 JPY", "13273 JPY", "****001", "76690"):
        assert shown in text, shown
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(path),
                    str(tmp_path / "page")], check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 1000


def test_withholding_month_and_bad_input(world: tuple[str, SettlementApplication, str]) -> None:
    url, _, _ = world
    with client(url) as api:
        body = api.get("/v1/withholding?month=2026-11", headers=FINANCE).json()
        csv = api.get("/v1/withholding?month=2026-11",
                      headers={**FINANCE, "Accept": "text/csv"}).text
        refused = {q: api.get(f"/v1/withholding?month={q}", headers=FINANCE)
                   for q in ("2026-12", "2026-13", "26-11", "2027-01")}
        year_refused = {q: api.get(f"/v1/withholding/annual?year={q}", headers=FINANCE)
                        for q in ("2027", "20x6")}
    assert body["due_date"] == "2026-12-10"
    (client_a,) = [c for c in body["clients"] if c["client_id"] == "client-a"]
    assert (client_a["withheld"], client_a["gross"], client_a["workers"],
            client_a["releases"]) == ("13273", "140000", 1, 2)
    assert [c["client_id"] for c in body["clients"]] == ["client-a"]  # client-b: flat, none
    assert csv.splitlines()[1].startswith("client-a,JPY,2026-11,1,140000,13273,2,2026-12-10")
    assert {q: (r.status_code, r.json()["error"]["code"]) for q, r in refused.items()} == {
        "2026-12": (400, "month_not_over"), "2026-13": (400, "invalid_month"),
        "26-11": (400, "invalid_parameter"), "2027-01": (400, "month_not_over")}
    assert year_refused["2027"].json()["error"]["code"] == "year_in_future"
    assert year_refused["20x6"].status_code == 400


def test_annual_rows_and_address_for_auditors_only(
        world: tuple[str, SettlementApplication, str]) -> None:
    url, _, _ = world
    with client(url) as api:
        finance = api.get("/v1/withholding/annual?year=2026", headers=FINANCE).json()
        auditor = api.get("/v1/withholding/annual?year=2026", headers=AUDITOR).json()
        csv = api.get("/v1/withholding/annual?year=2026",
                      headers={**AUDITOR, "Accept": "text/csv"}).text
    (row,) = auditor["payments"]
    assert (row["client_id"], row["worker_id"], row["name"], row["gross"],
            row["withheld"]) == ("client-a", "worker-1", "山田 太郎", "140000", "13273")
    assert row["address"] == "東京都千代田区丸の内1-1-1"
    assert finance["payments"][0]["address"] is None
    assert auditor["complete"] is False
    assert csv.splitlines()[0] == ("year,client_id,worker_id,name,address,currency,gross,"
                                   "withheld,releases")


def _events(app: SettlementApplication) -> int:
    return app.recorder.max_notification_id() or 0


def test_remit_twice_confirm_replay_and_verify(
        world: tuple[str, SettlementApplication, str]) -> None:
    url, app, _ = world
    month = parse_month("2026-11", NOW)
    (first,) = remit_month(app, month, NOW)
    assert (first.client_id, str(first.remitted), first.due_date) == (
        "client-a", "13273", "2026-12-10")
    stored = _events(app)
    (second,) = remit_month(app, month, NOW)
    assert (str(second.remitted), second.remittance_id, _events(app)) == ("0", None, stored)
    assert first.remittance_id is not None
    with pytest.raises(Rejected) as refused:
        confirm(app, "wr-202611-9-" + "0" * 32, "ref-1", NOW)
    assert refused.value.code == "unknown_remittance"
    with psycopg.connect(url, autocommit=True) as conn:
        project_all(app, conn)
    with client(url) as api:
        pending = api.get("/v1/withholding?month=2026-11", headers=FINANCE).json()
    assert pending["remittances"]["client-a"][0]["status"] == "pending"
    # Confirmed like a payout: the bank's `payout.settled` naming the remittance.
    settled = app.handle_batch([
        Command.create("tax-r-1", "payout.settled", NOW, {"payout_id": first.remittance_id,
                                                          "bank_ref": "nta-1"}),
        Command.create("tax-r-2", "payout.settled", NOW, {"payout_id": first.remittance_id,
                                                          "bank_ref": "nta-1"})])
    assert [o.status for o in settled] == [APPLIED, REJECTED]
    assert settled[1].error is not None
    assert settled[1].error.code == "remittance_already_confirmed"
    with pytest.raises(Rejected):
        confirm(app, first.remittance_id, "nta-1", NOW)
    with psycopg.connect(url, autocommit=True) as conn:
        project_all(app, conn)
        balances: dict[str, object] = dict(conn.execute(
            "SELECT account, credits - debits FROM projections.balances "
            "WHERE account = 'liabilities:withholding_tax:client-a'").fetchall())
        report = replay(app, conn, schema="tax_replay")
        with conn.transaction():  # the reconciliation expects the tax office's debit
            remittances = [e for e in reconciliation.expected(conn, "projections")
                           if e.kind == REMITTANCE]
    with client(url) as api:
        done = api.get("/v1/withholding?month=2026-11", headers=FINANCE).json()
        events = api.get("/v1/audit/events?limit=1000", headers=AUDITOR).json()["events"]
    assert balances == {"liabilities:withholding_tax:client-a": 0}
    assert remittances == [Expected(f"remittance:{first.remittance_id}", REMITTANCE, DEBIT,
                                    13273, NOW.date())]
    (client_a,) = done["clients"]
    assert (client_a["remitted"], client_a["outstanding"]) == ("13273", "0")
    assert done["remittances"]["client-a"] == [
        {"remittance_id": first.remittance_id, "amount": "13273", "status": "confirmed"}]
    assert report.equal, report.as_dict()["differing"]
    remitted = [e for e in events if e["type"] == "settlement.withholding_remitted"]
    assert remitted and remitted[0]["data"]["party_id"] == "client-a"
    verified = verify_chain(app)
    assert verified.ok and verified.events_checked == _events(app)




def test_statement_stored_once_and_proven_identical(
        world: tuple[str, SettlementApplication, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url, _, payout_id = world
    monkeypatch.setenv("SETTLEMENT_DATABASE_URL", url)
    out = tmp_path / "s.pdf"
    args = ["tax", "statement", "--payout", payout_id, "--out", str(out)]
    assert main(args) == 0 and main(args) == 0  # stored, then proven identical
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first == second and first["identical"] is True
    with client(url) as api:
        served = api.get(f"/v1/statements/{payout_id}/pdf", headers=FINANCE)
    assert served.headers["x-content-sha256"] == first["sha256"]
    assert served.content == out.read_bytes()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE settlement_documents SET sha256 = 'x' WHERE key = %s", (payout_id,))
        with client(url) as api:
            changed = api.get(f"/v1/statements/{payout_id}/pdf", headers=FINANCE)
        conn.execute("UPDATE settlement_documents SET sha256 = %s WHERE key = %s",
                     (first["sha256"], payout_id))
    assert changed.status_code == 500
    assert changed.json()["error"]["code"] == "document_changed"


def test_remit_refuses_a_month_not_over_and_writes_nothing(
        world: tuple[str, SettlementApplication, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, app, _ = world
    monkeypatch.setenv("SETTLEMENT_DATABASE_URL", url)
    before = _events(app)
    for month in ("2026-12", "2026-13"):
        assert main(["tax", "remit", "--month", month, "--now", NOW.isoformat()]) == 1
    codes = [json.loads(line)["error"]["code"] for line in capsys.readouterr().out.splitlines()]
    assert codes == ["month_not_over", "invalid_month"]
    assert _events(app) == before
