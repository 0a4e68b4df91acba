"""The finance API (SPEC §7) over real projections: a rich marketplace day stored
in the event store and projected into the live schema, every endpoint read
through the ASGI app. Amounts exact, the ledger balanced, receivables and
safeguarding consistent with the balances, CSV equal to JSON, pages that walk
every row once, as_of between two events, auth and errors."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from settlement.api.app import ApiConfig, create_app
from settlement.application.app import SettlementApplication
from settlement.infra.postgres import pg_env
from settlement.projections.storage import schema
from support.api import AUDITOR_TOKEN, FINANCE_TOKEN, START, TOKENS, Populated, populated_database
from support.projections import rich_day, store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NOW = START + timedelta(days=100)  # past every 60-day deadline of the day
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
FINANCE = {"Authorization": f"Bearer {FINANCE_TOKEN}"}
CSV = {"Accept": "text/csv"}


@pytest.fixture(scope="module")
def populated(pg_server: str) -> Iterator[Populated]:
    with populated_database(pg_server) as db:
        yield db


@pytest.fixture(scope="module")
def client(populated: Populated) -> Iterator[TestClient]:
    app = create_app(ApiConfig(populated.url, TOKENS, now=lambda: NOW))
    with TestClient(app) as test_client:
        yield test_client
    app.state.close()


def get(client: TestClient, path: str, headers: dict[str, str] | None = None,
        **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params, headers=headers or FINANCE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def balances_of(client: TestClient, currency: str, **params: Any) -> dict[str, Decimal]:
    body = get(client, "/v1/balances", currency=currency, limit=1000, **params)
    return {a["account"]: Decimal(a["balance"]) for a in body["accounts"]}


def test_balances_are_exact_and_filtered(client: TestClient) -> None:
    body = get(client, "/v1/balances", prefix="liabilities:worker_payable:", currency="JPY")
    assert body["as_of"] is None and body["currency"] == "JPY"
    payable = {a["account"]: a for a in body["accounts"]}
    # worker-1: m1 110,000 tiered with withholding (fee 21,000, tax 2,100, withheld
    # 10,210) → 76,690; m2 resolved 30,000 (fee 3,000, tax 300, withheld 3,063) → 23,637.
    assert payable["liabilities:worker_payable:worker-1"] == {
        "account": "liabilities:worker_payable:worker-1", "debits": "0", "credits": "100327",
        "balance": "100327"}
    assert Decimal(body["total"]) == sum(Decimal(a["balance"]) for a in body["accounts"])
    one = get(client, "/v1/balances", account="liabilities:withholding_tax:client-a")
    assert one["currency"] == "JPY"  # the only currency of the matching rows
    assert [(a["account"], a["balance"]) for a in one["accounts"]] == [
        ("liabilities:withholding_tax:client-a", "13273")]
    # USD keeps its minor units, as strings.
    usd = get(client, "/v1/balances", account="assets:safeguarded_cash", currency="USD")
    assert usd["accounts"][0]["debits"] == "158.02" and usd["total"] == "158.02"


def test_trial_balance_is_balanced_and_cash_covers_every_obligation(client: TestClient) -> None:
    for currency in ("JPY", "USD"):
        trial = get(client, "/v1/trial-balance", currency=currency, limit=1000)
        assert trial["total_debits"] == trial["total_credits"]
        assert Decimal(trial["total_debits"]) == sum(Decimal(a["debits"])
                                                     for a in trial["accounts"])
        balances = {a["account"]: Decimal(a["balance"]) for a in trial["accounts"]}
        cash = balances.pop("assets:safeguarded_cash")
        assert cash == sum(balances.values())  # cash = Σ liabilities + revenue (SPEC §6)
        obligations = sum(b for a, b in balances.items() if a.startswith("liabilities:"))
        safe = get(client, "/v1/safeguarding", currency=currency)
        assert (Decimal(safe["cash"]), Decimal(safe["obligations"])) == (cash, obligations)
        assert safe["shortfall"] == "0"
        assert Decimal(safe["coverage_ratio"]) == (cash / obligations).quantize(
            Decimal("0.000001"), rounding=ROUND_DOWN)
    assert get(client, "/v1/safeguarding", currency="JPY") == {
        "currency": "JPY", "cash": "368125", "obligations": "320245",
        "coverage_ratio": "1.149510", "shortfall": "0"}


def test_as_of_between_two_events(client: TestClient) -> None:
    escrow = "liabilities:escrow:day0-project"
    m1_funded, m2_funded = START + timedelta(minutes=2), START + timedelta(minutes=3)

    def held(at: Any) -> list[tuple[str, str, str]]:
        body = get(client, "/v1/balances", account=escrow, currency="JPY", as_of=at.isoformat())
        assert body["as_of"] == at.isoformat()
        return [(a["debits"], a["credits"], a["balance"]) for a in body["accounts"]]

    assert held(m1_funded - timedelta(microseconds=1)) == []
    assert held(m1_funded) == [("0", "110000", "110000")]
    assert held(m1_funded + timedelta(seconds=30)) == [("0", "110000", "110000")]
    assert held(m2_funded) == [("0", "165000", "165000")]
    trial = get(client, "/v1/trial-balance", currency="JPY",
                as_of=(m1_funded + timedelta(seconds=30)).isoformat())
    assert (trial["total_debits"], trial["total_credits"]) == ("110000", "110000")
    # Z and other offsets name the same instant.
    same = get(client, "/v1/balances", account=escrow, currency="JPY",
               as_of="2026-11-26T18:02:30+09:00")
    assert same["accounts"][0]["balance"] == "110000"
    rows = get(client, "/v1/receivables", currency="JPY", worker_id="worker-1",
               as_of="2026-11-26T09:02:30Z")["rows"]
    assert [(r["item_id"], r["protected"], r["state"]) for r in rows] == [
        ("m1", True, "funded"), ("m2", False, "contracted")]


def test_account_entries_carry_the_running_balance(client: TestClient) -> None:
    body = get(client, "/v1/accounts/assets:safeguarded_cash/entries", currency="JPY",
               limit=1000)
    entries = body["entries"]
    assert (body["account"], body["currency"]) == ("assets:safeguarded_cash", "JPY")
    assert entries[0] == {"position": 2, "time": "2026-11-26T09:02:00+00:00",
                          "job_id": "day0-project", "event_type": "settlement.milestone_funded",
                          "side": "debit", "amount": "110000", "running_balance": "110000"}
    running = Decimal(0)
    for entry in entries:
        running += Decimal(entry["amount"]) * (1 if entry["side"] == "debit" else -1)
        assert Decimal(entry["running_balance"]) == running
    assert running == balances_of(client, "JPY")["assets:safeguarded_cash"]
    # A time window keeps the running balance of the whole account.
    late = get(client, "/v1/accounts/assets:safeguarded_cash/entries", currency="JPY",
               **{"from": "2026-11-26T09:10:00Z", "to": "2026-11-26T09:20:00Z"})["entries"]
    assert late and all("09:10" <= e["time"][11:16] <= "09:20" for e in late)
    by_position = {e["position"]: e for e in entries}
    assert all(by_position[e["position"]] == e for e in late)


def test_escrow_summary(client: TestClient) -> None:
    assert get(client, "/v1/escrows/day0-project") == {
        "job_id": "day0-project", "format": "project", "state": "active", "currency": "JPY",
        "client_id": "client-a", "funded": "165000", "held": "0", "released": "140000",
        "refunded": "25000", "fees": "26400", "withholding": "13273",
        "items": [{"item_id": "m1", "state": "released", "amount": "110000",
                   "worker_id": "worker-1"},
                  {"item_id": "m2", "state": "resolved", "amount": "55000",
                   "worker_id": "worker-1"}]}
    missing = client.get("/v1/escrows/no-such-job", headers=FINANCE)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "escrow_not_found"


def test_receivables_agree_with_the_ledger(client: TestClient) -> None:
    for currency in ("JPY", "USD"):
        body = get(client, "/v1/receivables", currency=currency, limit=1000)
        rows, totals = body["rows"], body["totals"]
        payable_accounts = balances_of(client, currency, prefix="liabilities:worker_payable:")
        assert Decimal(totals["payable"]) == sum(payable_accounts.values())
        assert Decimal(totals["protected"]) == sum(Decimal(r["amount"]) for r in rows
                                                   if r["protected"])
        assert Decimal(totals["unprotected"]) == sum(Decimal(r["amount"]) for r in rows
                                                     if not r["protected"])
        assert Decimal(totals["overdue"]) == sum(Decimal(r["amount"]) for r in rows
                                                 if r["overdue"])
        for worker, owed in payable_accounts.items():
            mine = get(client, "/v1/receivables", currency=currency,
                       worker_id=worker.rsplit(":", 1)[1])
            assert Decimal(mine["totals"]["payable"]) == owed
    worker_1 = get(client, "/v1/receivables", worker_id="worker-1")
    assert worker_1["totals"] == {"protected": "140000", "unprotected": "0",
                                  "payable": "100327", "overdue": "140000"}
    assert [(r["item_id"], r["net"], r["due_by"], r["overdue"]) for r in worker_1["rows"]] == [
        ("m1", "76690", "2027-01-24T15:00:00+00:00", True),
        ("m2", "23637", "2027-01-24T15:00:00+00:00", True)]
    # Not overdue as of a day after delivery.
    early = get(client, "/v1/receivables", worker_id="worker-1", as_of="2026-11-27T09:00:00Z")
    assert early["totals"]["overdue"] == "0"
    unfunded = get(client, "/v1/receivables", client_id="client-e")
    assert unfunded["totals"]["unprotected"] == "7000"


def test_payouts_by_status(client: TestClient) -> None:
    everything = get(client, "/v1/payouts")["payouts"]
    assert [p["payout_id"] for p in everything] == ["po-1", "po-2", "po-3"]
    assert everything[0] == {"payout_id": "po-1", "party_type": "worker",
                             "party_id": "worker-1", "currency": "JPY", "amount": "100327",
                             "status": "initiated",
                             "items": [{"job_id": "day0-project", "item_id": "m1"}],
                             # borne by the platform: the whole amount is sent
                             "transfer_fee": "0", "sent": "100327"}
    failed = get(client, "/v1/payouts", status="failed")["payouts"]
    assert [(p["payout_id"], p["amount"]) for p in failed] == [("po-3", "85.05")]


def test_audit_events_in_order_with_their_chain(client: TestClient,
                                                populated: Populated) -> None:
    events = get(client, "/v1/audit/events", AUDITOR, limit=1000)["events"]
    assert [e["position"] for e in events] == list(range(1, populated.events + 1))
    assert events[0]["prev_hash"] == "0" * 64
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:], strict=False))
    mine = get(client, "/v1/audit/events", AUDITOR, job_id="day0-project")["events"]
    assert [e["version"] for e in mine] == list(range(1, len(mine) + 1))
    assert get(client, "/v1/audit/verify", AUDITOR) == {
        "ok": True, "events_checked": populated.events, "first_bad_position": None}


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def as_cells(row: dict[str, Any]) -> dict[str, str]:
    import orjson

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict | list):
            return orjson.dumps(v).decode()
        return str(v)

    return {k: cell(v) for k, v in row.items()}


LISTS = [("/v1/balances", {"currency": "JPY"}, "accounts", FINANCE),
         ("/v1/trial-balance", {"currency": "USD"}, "accounts", FINANCE),
         ("/v1/accounts/assets:safeguarded_cash/entries", {"currency": "JPY"}, "entries",
          FINANCE),
         ("/v1/receivables", {"currency": "JPY"}, "rows", FINANCE),
         ("/v1/payouts", {}, "payouts", FINANCE),
         ("/v1/audit/events", {}, "events", AUDITOR)]


@pytest.mark.parametrize(("path", "params", "key", "headers"), LISTS)
def test_csv_has_the_rows_of_the_json(client: TestClient, path: str, params: dict[str, str],
                                      key: str, headers: dict[str, str]) -> None:
    rows = get(client, path, headers, limit=1000, **params)[key]
    response = client.get(path, params={**params, "limit": 1000}, headers={**headers, **CSV})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert rows and csv_rows(response.text) == [as_cells(r) for r in rows]


PAGES = [("/v1/balances", {"currency": "JPY"}, "accounts", lambda r: r["account"], FINANCE),
         ("/v1/trial-balance", {"currency": "JPY"}, "accounts", lambda r: r["account"], FINANCE),
         ("/v1/accounts/assets:safeguarded_cash/entries", {"currency": "JPY"}, "entries",
          lambda r: r["position"], FINANCE),
         ("/v1/receivables", {"currency": "JPY"}, "rows",
          lambda r: f"{r['job_id']}/{r['item_id']}", FINANCE),
         ("/v1/payouts", {}, "payouts", lambda r: r["payout_id"], FINANCE),
         ("/v1/audit/events", {}, "events", lambda r: r["position"], AUDITOR)]


@pytest.mark.parametrize(("path", "params", "key", "cursor", "headers"), PAGES)
def test_pages_walk_every_row_once(client: TestClient, path: str, params: dict[str, str],
                                   key: str, cursor: Callable[[dict[str, Any]], Any],
                                   headers: dict[str, str]) -> None:
    whole = get(client, path, headers, limit=1000, **params)
    walked: list[dict[str, Any]] = []
    after: Any = None
    for _ in range(100):
        extra = {} if after is None else {"after": after}
        response = client.get(path, params={**params, "limit": 2, **extra}, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()[key]
        walked += page
        if len(page) < 2:
            assert "x-next-after" not in response.headers
            break
        assert response.headers["x-next-after"] == str(cursor(page[-1]))
        after = cursor(page[-1])
    assert walked == whole[key]
    if path in ("/v1/balances", "/v1/trial-balance"):  # totals cover every page
        last = client.get(path, params={**params, "limit": 2, "after": after},
                          headers=headers).json()
        assert {k: v for k, v in last.items() if k != key} == {
            k: v for k, v in whole.items() if k != key}


def test_authentication_and_roles(client: TestClient) -> None:
    finance_paths = ["/v1/balances?currency=JPY", "/v1/trial-balance?currency=JPY",
                     "/v1/accounts/assets:safeguarded_cash/entries?currency=JPY",
                     "/v1/escrows/day0-project", "/v1/receivables?currency=JPY",
                     "/v1/safeguarding?currency=JPY", "/v1/payouts"]
    audit_paths = ["/v1/audit/events", "/v1/audit/verify"]
    for path in finance_paths + audit_paths:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": FINANCE_TOKEN},
                        {"Authorization": "Basic Zm9vOmJhcg=="}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers=AUDITOR).status_code == 200, path
    for path in finance_paths:
        assert client.get(path, headers=FINANCE).status_code == 200, path
    for path in audit_paths:
        response = client.get(path, headers=FINANCE)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"
    # No token needed for liveness, metrics and the document.
    for path in ("/healthz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200


@pytest.mark.parametrize(("query", "code", "parameter"), [
    ("/v1/balances?currency=JPY&limit=1001", "invalid_parameter", "limit"),
    ("/v1/balances?currency=JPY&limit=0", "invalid_parameter", "limit"),
    ("/v1/balances?currency=JPY&limit=many", "invalid_parameter", "limit"),
    ("/v1/balances?currency=JPY&as_of=yesterday", "invalid_parameter", "as_of"),
    ("/v1/balances?currency=JPY&as_of=2026-11-26T09:00:00", "invalid_parameter", "as_of"),
    ("/v1/balances?currency=yen", "invalid_parameter", "currency"),
    ("/v1/balances", "currency_required", "currency"),
    ("/v1/trial-balance", "currency_required", "currency"),
    ("/v1/receivables?after=nocursor", "invalid_parameter", "after"),
    ("/v1/accounts/assets:safeguarded_cash/entries?currency=JPY&after=-1", "invalid_parameter",
     "after"),
    ("/v1/accounts/assets:safeguarded_cash/entries?from=x", "invalid_parameter", "from"),
])
def test_bad_parameters_get_a_coded_400(client: TestClient, query: str, code: str,
                                        parameter: str) -> None:
    response = client.get(query, headers=FINANCE)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["parameter"] == parameter
    assert response.json()["error"]["message"]


def test_limit_allows_500_rows(client: TestClient) -> None:
    assert client.get("/v1/audit/events?limit=500", headers=AUDITOR).status_code == 200


def test_metrics_report_the_projection_position(client: TestClient,
                                                populated: Populated) -> None:
    text = client.get("/metrics").text
    assert f"settlement_events_stored {populated.events}.0" in text
    assert f"settlement_projection_position {populated.events}.0" in text
    assert "settlement_projection_lag 0.0" in text
    assert 'settlement_commands_total{outcome="applied"}' in text


def test_an_empty_ledger_answers_empty(database_url: str) -> None:
    app = create_app(ApiConfig(database_url, TOKENS))
    with TestClient(app) as empty:
        # Before the projector created its schema: unavailable, in the error shape.
        response = empty.get("/v1/balances", headers=FINANCE)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "projections_unavailable"
        with psycopg.connect(database_url, autocommit=True) as conn:
            schema.create(conn, schema.LIVE_SCHEMA)
        assert get(empty, "/v1/balances") == {"as_of": None, "currency": None, "accounts": [],
                                              "total": "0"}
        assert get(empty, "/v1/payouts") == {"payouts": []}
        assert get(empty, "/v1/audit/verify", AUDITOR) == {
            "ok": True, "events_checked": 0, "first_bad_position": None}
        assert empty.get("/metrics").status_code == 200
    app.state.close()


def test_verify_finds_an_edited_event(database_url: str) -> None:
    app = SettlementApplication(pg_env(database_url))
    try:
        store(app, rich_day(START, "t")[:6])
    finally:
        app.close()
    api = create_app(ApiConfig(database_url, TOKENS))
    with TestClient(api) as c, psycopg.connect(database_url, autocommit=True) as conn:
        assert get(c, "/v1/audit/verify", AUDITOR)["ok"] is True
        conn.execute("UPDATE settlement_events SET state = convert_to(replace(convert_from("
                     "state, 'UTF8'), '55000', '56000'), 'UTF8') WHERE notification_id = 3")
        assert get(c, "/v1/audit/verify", AUDITOR) == {
            "ok": False, "events_checked": 3, "first_bad_position": 3}
    api.state.close()


def test_cli_serves_and_stops_on_sigterm(populated: Populated, tmp_path: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": populated.url,
           "SETTLEMENT_API_ADDR": f"127.0.0.1:{port}",
           "SETTLEMENT_API_TOKENS": f"{FINANCE_TOKEN}:finance,{AUDITOR_TOKEN}:auditor"}
    process = subprocess.Popen([sys.executable, "-m", "settlement.cli", "api"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, process.stderr
            time.sleep(0.1)
        response = httpx.get(f"{base}/v1/escrows/day0-project", headers=FINANCE)
        assert response.json()["funded"] == "165000"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    events = [json.loads(line)["event"] for line in err.splitlines()]  # every line JSON
    assert events[0] == "api.listening" and events[-1] == "api.stopped", events
    assert any("Uvicorn running" in event for event in events), events


def test_an_entries_page_never_ends_inside_a_position(database_url: str) -> None:
    """Two lines of one event on one account stay on one page, so `after` = the
    last row's position skips nothing."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        schema.create(conn, schema.LIVE_SCHEMA)
        rows = [(1, 1, "assets:safeguarded_cash", "debit", "100"),
                (1, 2, "liabilities:escrow:j", "credit", "100"),
                (2, 1, "liabilities:escrow:j", "debit", "30"),
                (2, 2, "liabilities:escrow:j", "debit", "20"),
                (2, 3, "liabilities:worker_payable:w", "credit", "50"),
                (3, 1, "liabilities:escrow:j", "debit", "5"),
                (3, 2, "liabilities:worker_payable:w", "credit", "5")]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO projections.ledger_entries VALUES (%s, %s, %s, 'j', 'settlement.x', "
                "%s, %s, %s, 'JPY')",
                [(p, n, START + timedelta(minutes=p), a, side, Decimal(amt))
                 for p, n, a, side, amt in rows])
        conn.execute("INSERT INTO projections.balances VALUES ('liabilities:escrow:j', 'JPY', "
                     "55, 100)")
    app = create_app(ApiConfig(database_url, TOKENS))
    path = "/v1/accounts/liabilities:escrow:j/entries"
    with TestClient(app) as c:
        first = get(c, path, limit=2)["entries"]
        assert [(e["position"], e["amount"], e["running_balance"]) for e in first] == [
            (1, "100", "100"), (2, "30", "70"), (2, "20", "50")]
        rest = get(c, path, limit=2, after=2)["entries"]
        assert [(e["position"], e["running_balance"]) for e in rest] == [(3, "45")]
        # A window hides entries but not their effect on the running balance.
        late = get(c, path, **{"from": (START + timedelta(minutes=3)).isoformat()})["entries"]
        assert [(e["position"], e["running_balance"]) for e in late] == [(3, "45")]
    app.state.close()


def test_payouts_and_paid_out_receivables_from_a_real_payout_run(database_url: str) -> None:
    """A day, a payout run the next day, one payout settled and one failed two days
    later: the payouts list, receivables no longer payable once paid out (and the
    failed one payable again), and the same as of an instant between."""
    from settlement.core.commands import Command
    from settlement.infra.bootstrap import owner_env
    from settlement.payouts.run import payout_run
    from settlement.service.scenario import marketplace_day, marketplace_parties
    from support.api import project_all
    from support.ingest import commands_of

    run_at, results_at = START + timedelta(days=1), START + timedelta(days=2)
    app = SettlementApplication({**pg_env(database_url), **owner_env()})
    try:
        app.handle_batch(commands_of(marketplace_parties(START, "d1")
                                     + marketplace_day(START, "d1")))
        created = {line.account: line.payout_id for line in payout_run(app, run_at).created}
        worker_1 = created["liabilities:worker_payable:worker-1"]
        worker_2 = created["liabilities:worker_payable:worker-2"]
        app.handle_batch([
            Command.create("res-1", "payout.settled", results_at,
                           {"payout_id": worker_1, "bank_ref": "b-1"}),
            Command.create("res-2", "payout.failed", results_at,
                           {"payout_id": worker_2, "reason": "account closed"})])
        with psycopg.connect(database_url, autocommit=True) as conn:
            project_all(app, conn)
    finally:
        app.close()
    api = create_app(ApiConfig(database_url, TOKENS, now=lambda: NOW))
    with TestClient(api) as c:
        payouts = {p["payout_id"]: p for p in get(c, "/v1/payouts", limit=1000)["payouts"]}
        assert (payouts[worker_1]["status"], payouts[worker_1]["amount"]) == ("settled", "100327")
        assert (payouts[worker_2]["status"], payouts[worker_2]["amount"]) == ("failed", "33400")
        assert payouts[worker_1]["party_type"] == "worker"
        assert {(i["job_id"], i["item_id"]) for i in payouts[worker_1]["items"]} == {
            ("d1-project", "m1"), ("d1-project", "m2")}
        assert [p["payout_id"] for p in get(c, "/v1/payouts", status="failed")["payouts"]] == [
            worker_2]
        ledger = balances_of(c, "JPY", prefix="liabilities:worker_payable:")
        assert ledger["liabilities:worker_payable:worker-1"] == 0
        assert ledger["liabilities:worker_payable:worker-2"] == Decimal(33400)
        assert ledger["liabilities:worker_payable:worker-4"] == Decimal(836)
        now = get(c, "/v1/receivables", currency="JPY", limit=1000)
        assert Decimal(now["totals"]["payable"]) == sum(ledger.values()) == Decimal(33400 + 836)
        mine = {r["item_id"]: r for r in now["rows"] if r["worker_id"] == "worker-1"}
        assert not mine["m1"]["overdue"]  # paid out in time
        # Between the run and the results: every worker's claim paid out but worker-4's
        # 836 yen, below the minimum and carried over.
        between = (run_at + timedelta(hours=12)).isoformat()
        then = get(c, "/v1/receivables", currency="JPY", as_of=between, limit=1000)
        assert then["totals"]["payable"] == "836"
        assert get(c, "/v1/balances", currency="JPY", as_of=between,
                   account="liabilities:payouts_in_transit")["total"] == str(
            100327 + 33400 + 8350 + 29000)  # and client-a's refund
        # Before the run, the as-of view matches the day's payables.
        before = get(c, "/v1/receivables", currency="JPY",
                     as_of=(run_at - timedelta(hours=1)).isoformat())
        assert before["totals"]["payable"] == str(100327 + 33400 + 8350 + 836)
    api.state.close()
