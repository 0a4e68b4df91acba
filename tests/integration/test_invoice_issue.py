"""Qualified invoices on the real PostgreSQL (SPEC §12), hand-computed from
`support/invoices.py`: a tiered worker (five fees of 2,425), a flat worker
bearing transfer fees (five fees of 1,666 and a payout's fee of 660, other
bank, tax 60) and the flat client (five client fees of 555).

| party | charged | posted tax | invoice tax | true-up |
|---|---|---|---|---|
| w-t | 12,125 | 1,100 | floor(12,125 / 11) = 1,102 | 2 |
| w-f | 8,330 + 660 = 8,990 | 755 + 60 = 815 | floor(8,990 / 11) = 817 | 2 |
| c-f | 2,775 | 250 | floor(2,775 / 11) = 252 | 2 |

Issued by `settlement invoices issue` (refused before the month is over, a
no-op the second time), served by the API as JSON, CSV and PDF (read back
with pdftotext, drawn with pdftoppm), replayed, chain-verified, and numbered
without gaps by issuers racing."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource

from settlement.api import invoice_models as models
from settlement.api.app import ApiConfig, create_app
from settlement.application.app import SettlementApplication
from settlement.audit.verify import verify_chain
from settlement.cli.main import main
from settlement.core.months import Month
from settlement.ingest.decoding import schemas_dir
from settlement.invoices.issue import issue_month
from settlement.invoices.issuer import Issuer
from settlement.payouts.run import payout_run
from settlement.projections.rebuild.replay import replay
from support import invoices as fx
from support.api import FINANCE_TOKEN, TOKENS, project_all
from support.ingest import commands_of
from support.memory import POLICY
from support.projections import stored_cloud_events

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FINANCE = {"Authorization": f"Bearer {FINANCE_TOKEN}"}
ISSUER = Issuer("株式会社セトルメント", "東京都千代田区丸の内1-1-1", "T7000012050002")
PLATFORM = {"SETTLEMENT_PLATFORM_NAME": ISSUER.name,
            "SETTLEMENT_PLATFORM_ADDRESS": ISSUER.address,
            "SETTLEMENT_PLATFORM_INVOICE_REGISTRATION_NUMBER": ISSUER.registration_number}
NOW = datetime.fromisoformat("2026-12-01T09:00:00+09:00")
EXPECTED = {"w-t": ("12125", "1102"), "w-f": ("8990", "817"), "c-f": ("2775", "252")}


@pytest.fixture(scope="module")
def world(pg_server: str) -> Iterator[tuple[str, SettlementApplication]]:
    from settlement.infra.postgres import create_database, drop_database, pg_env

    url = create_database(pg_server, "invoices_it")
    app = SettlementApplication(pg_env(url))
    try:
        app.handle_batch(commands_of([
            *fx.parties("t", "w-t", "c-t"), *fx.parties("f", "w-f", "c-f", payee_bears=True),
            *fx.month_of_releases("tiered", "t", "w-t", "c-t", "job-t"),
            *fx.month_of_releases("flat", "f", "w-f", "c-f", "job-f")]))
        # A payout in November: w-f bears its transfer fee (SPEC §11).
        report = payout_run(app, datetime.fromisoformat("2026-11-20T00:00:00+00:00"),
                            "run-nov-20", policy=POLICY)
        assert [(p.party_id, str(p.payout.transfer_fee.amount)) for p in report.payouts
                if p.payout.transfer_fee] == [("w-f", "660")]
        yield url, app
    finally:
        app.close()
        drop_database(pg_server, "invoices_it")


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str,
         *args: str) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("SETTLEMENT_DATABASE_URL", url)
    for name, value in PLATFORM.items():
        monkeypatch.setenv(name, value)
    status = main(["invoices", *args])
    return status, json.loads(capsys.readouterr().out.splitlines()[-1])


def test_issue_serve_replay_and_verify(world: tuple[str, SettlementApplication],
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    url, app = world
    stored = app.recorder.max_notification_id()
    status, refused = _cli(monkeypatch, capsys, url, "issue", "--month", "2026-11",
                           "--now", "2026-11-30T23:59:59+09:00")
    assert (status, refused["error"]["code"]) == (2, "month_not_over")
    assert app.recorder.max_notification_id() == stored  # nothing written
    status, first = _cli(monkeypatch, capsys, url, "issue", "--month", "2026-11",
                         "--now", NOW.isoformat())
    assert status == 0, first
    assert (first["issued"], first["first"], first["last"], first["tax"], first["true_up"],
            first["pdfs"], first["pdf_differing"]) == (
        3, "INV-202612-000001", "INV-202612-000003", "2171", "6", 3, [])
    status, again = _cli(monkeypatch, capsys, url, "issue", "--month", "2026-11",
                         "--now", "2026-12-02T09:00:00+09:00")
    assert (status, again["issued"], again["existing"]) == (0, 0, 3)
    with psycopg.connect(url, autocommit=True) as conn:
        project_all(app, conn)
        tax = conn.execute(
            "SELECT sum(CASE side WHEN 'credit' THEN amount ELSE -amount END) FROM "
            "projections.ledger_entries WHERE account = 'liabilities:consumption_tax'"
        ).fetchone()
        rows = conn.execute("SELECT account, side, amount FROM projections.ledger_entries "
                            "WHERE event_type = 'settlement.invoice_issued' "
                            "ORDER BY position, line").fetchall()
        report = replay(app, conn, schema="invoices_replay")
    # The ledger's tax on the month's fees is the invoices' (every charge is November's).
    assert tax is not None and tax[0] == Decimal(2171)
    assert sorted((a, s, int(v)) for a, s, v in rows) == sorted(
        [("revenue:platform_fees:worker", "debit", 2),
         ("revenue:platform_fees:worker", "debit", 2),
         ("revenue:platform_fees:client", "debit", 2)]
        + [("liabilities:consumption_tax", "credit", 2)] * 3)
    assert report.equal, report.as_dict()["differing"]
    verified = verify_chain(app)
    assert verified.ok and verified.events_checked == app.recorder.max_notification_id()
    _check_published(app)
    _check_api(url, tmp_path)


def _check_published(app: SettlementApplication) -> None:
    registry: Registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc))
        for doc in (json.loads(p.read_text("utf-8")) for p in schemas_dir().glob("*.json")))
    validator = Draft202012Validator(
        {"$ref": "https://settlement.example/schemas/v1/settlement.invoice_issued.json"},
        registry=registry)
    issued = [e for e in stored_cloud_events(app) if e["type"] == "settlement.invoice_issued"]
    assert [e["subject"] for e in issued] == ["c-f", "w-f", "w-t"]
    for event in issued:
        assert list(validator.iter_errors(event)) == []


def _check_api(url: str, tmp_path: Path) -> None:
    with TestClient(create_app(ApiConfig(url, TOKENS, now=lambda: NOW))) as api:
        listed = api.get("/v1/invoices?month=2026-11", headers=FINANCE).json()["invoices"]
        page = api.get("/v1/invoices?limit=2", headers=FINANCE)
        rest = api.get(f"/v1/invoices?limit=2&after={page.headers['x-next-after']}",
                       headers=FINANCE).json()["invoices"]
        csv = api.get("/v1/invoices?party_id=c-f",
                      headers={**FINANCE, "Accept": "text/csv"}).text
        one = api.get("/v1/invoices/INV-202612-000002", headers=FINANCE).json()
        lines = api.get("/v1/invoices/INV-202612-000001",
                        headers={**FINANCE, "Accept": "text/csv"}).text
        pdf = api.get("/v1/invoices/INV-202612-000002/pdf", headers=FINANCE)
        by_accept = api.get("/v1/invoices/INV-202612-000002",
                            headers={**FINANCE, "Accept": "application/pdf"})
        missing = api.get("/v1/invoices/INV-202612-000099", headers=FINANCE)
        malformed = api.get("/v1/invoices/INV-1", headers=FINANCE)
        bad_month = api.get("/v1/invoices?month=2026-13", headers=FINANCE)
        not_over = api.get("/v1/invoices?month=2026-12", headers=FINANCE)
        year_zero = api.get("/v1/invoices?month=0000-01", headers=FINANCE)
    assert {r["party_id"]: (r["total"], r["tax"]) for r in listed} == EXPECTED
    models.Invoices.model_validate({"invoices": listed})  # as the OpenAPI document says
    models.Invoice.model_validate(one)
    assert [r["number"] for r in page.json()["invoices"] + rest] == [
        f"INV-202612-{n:06d}" for n in range(1, 4)]
    assert csv.splitlines()[0] == ("number,party_id,period,issued_on,corrects,total,tax,"
                                   "currency,document_sha256")
    assert csv.splitlines()[1].startswith("INV-202612-000001,c-f,2026-11,2026-12-01,,2775,252")
    assert "'=株式会社" in lines or "=株式会社" not in lines  # no cell a spreadsheet runs
    assert (one["party_id"], one["total"], one["tax"], one["issuer"]["registration_number"],
            one["recipient"]["name"]) == ("w-f", "8990", "817", "T7000012050002", "山田 太郎")
    assert [(t["rate"], t["total"], t["tax"]) for t in one["totals"]] == [
        ("0.10", "8990", "817")]
    assert [line["kind"] for line in one["lines"]] == ["worker_fee"] * 5 + ["transfer_fee"]
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "invoice_not_found"
    assert malformed.status_code == 400 and bad_month.status_code == 400
    assert (not_over.status_code, not_over.json()["error"]["code"]) == (400, "month_not_over")
    assert (year_zero.status_code, year_zero.json()["error"]["code"]) == (400, "invalid_month")
    assert pdf.headers["content-type"] == "application/pdf"
    assert by_accept.content == pdf.content  # the same bytes on every render
    with psycopg.connect(url) as conn:
        kept = conn.execute("SELECT sha256 FROM settlement_documents WHERE kind = 'invoice' "
                            "AND key = 'INV-202612-000002'").fetchone()
    assert kept is not None and kept[0] == pdf.headers["x-content-sha256"]
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run([shutil.which("pdftotext") or "pdftotext", str(path), "-"],
                          check=True, capture_output=True, text=True).stdout
    for shown in ("適格請求書", "T7000012050002", "INV-202612-000002", "¥8,990", "¥817",
                  "山田 太郎", "株式会社セトルメント", "2026-11-02"):
        assert shown in text, shown
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(path),
                    str(tmp_path / "page")], check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 1000


def test_concurrent_issuers_number_without_gaps(
        world: tuple[str, SettlementApplication]) -> None:
    url, app = world
    months = [Month(2026, 9), Month(2026, 10)]
    for month in months:
        start = month.start.replace(day=3)
        app.handle_batch(commands_of([
            event for n in range(4) for event in fx.month_of_releases(
                "flat", f"m{month.month}-{n}", f"w{month.month}-{n}", f"c{month.month}",
                f"job-{month.month}-{n}", [10_100, 10_100], start=start)]))
    errors: list[BaseException] = []
    before = _invoice_versions(url)  # the other test's, when it ran first on this world

    def issue(month: Month) -> None:
        try:
            issue_month(app, month, NOW, ISSUER, batch_parties=1)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=issue, args=(m,)) for m in months]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Five more per month (four workers and the client), numbered on from before.
    assert _invoice_versions(url) == list(range(1, len(before) + 2 * 5 + 1))


def _invoice_versions(url: str) -> list[int]:
    """The versions of the invoice numbering streams' events, in order."""
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT originator_version FROM settlement_events "
                             "WHERE topic LIKE %s ORDER BY originator_version",
                             ("%invoices.events:Invoice%",)).fetchall()
    return [v for (v,) in found]
