"""`settlement run` end to end, as an operator runs it: a subprocess on the
embedded defaults (its own state directory, free ports), marketplace events and
payout results published to Kafka, every finance API endpoint read over HTTP and
checked against an in-memory run of the same script and against each other; a
payout run; SIGTERM under load and a restart, compared with a reference."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from settlement.application.app import SettlementApplication
from settlement.banking.calendar import is_closing_day, jst_date
from settlement.core.fees import DEFAULT_FEE_PLANS, load_fee_plans
from settlement.infra.postgres import embedded_postgres, pg_env
from settlement.infra.topics import Topics
from settlement.service.scenario import bank_account, cloud_event, marketplace_day
from support.ingest import digests, publish, stored_event_count
from support.projections import Timers, money, rich_day, run

FINANCE, AUDITOR = "e2e-finance-token", "e2e-auditor-token"
TOKENS = f"{FINANCE}:finance,{AUDITOR}:auditor"
STARTUP_S = 90.0
CATCH_UP_S = 90.0
STOP_S = 45.0
# Now, to the minute, less an hour: no timer can come due while a test runs (the
# service's timer loop reads the wall clock), whatever day the suite runs on; and
# a day earlier on a closing day (SPEC §11), so no closing the timer loop runs
# covers the test's events.
START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
if is_closing_day(jst_date(START)) or jst_date(START) != jst_date(START + timedelta(hours=6)):
    START -= timedelta(days=1, hours=6)
PLANS = load_fee_plans(DEFAULT_FEE_PLANS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str,
               service: Service | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if service is not None and service.process.poll() is not None:
            raise AssertionError(f"the service exited ({service.process.returncode}) waiting "
                                 f"for {what}:\n{service.log_tail()}")
        if time.monotonic() > deadline:
            tail = service.log_tail() if service is not None else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.2)


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    cwd: Path
    api: str
    log_path: Path

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        return lines

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def bootstrap(self) -> str:
        started = wait_until(lambda: [e for e in self.log_lines()
                                      if e.get("event") == "run.started"],
                             STARTUP_S, "run.started", self)
        return str(started[0]["kafka"])

    def get(self, path: str, token: str | None = AUDITOR, accept: str = "application/json"
            ) -> tuple[int, str]:
        request = urllib.request.Request(f"{self.api}{path}", headers={"Accept": accept})
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def json(self, path: str, token: str | None = AUDITOR) -> Any:
        status, body = self.get(path, token)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def healthy(self) -> bool:
        try:
            return self.get("/healthz", None)[0] == 200
        except OSError:
            return False

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"no clean stop within {STOP_S}s:\n{self.log_tail()}") from None


def service_env(api_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEMENT_")}
    return {**env, "SETTLEMENT_API_ADDR": f"127.0.0.1:{api_port}",
            "SETTLEMENT_API_TOKENS": TOKENS, **extra}


def start_service(cwd: Path, env: dict[str, str], *args: str, log_name: str = "service.log"
                  ) -> Service:
    log_path = cwd / log_name
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "settlement.cli", "run", "--timer-interval", "2", *args],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    service = Service(process, cwd, f"http://{env['SETTLEMENT_API_ADDR']}", log_path)
    wait_until(service.healthy, STARTUP_S, "the API", service)
    return service


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Service]:
    """`settlement run` on the embedded PostgreSQL and broker, in its own directory."""
    service = start_service(tmp_path, service_env(free_port()))
    try:
        yield service
    finally:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()


# The script and what it must produce ----------------------------------------------------


def script(prefix: str) -> list[Any]:
    """A marketplace day and the rich day's extras (all formats, USD, disputes,
    cancellations), without timer passes."""
    return [step for step in rich_day(START, prefix) if not isinstance(step, Timers)]


def expected_balances(events: list[dict[str, Any]]) -> dict[str, dict[str, list[Decimal]]]:
    """currency → account → [debits, credits] over the events' postings."""
    out: dict[str, dict[str, list[Decimal]]] = defaultdict(dict)
    for event in events:
        for p in event["data"]["postings"]:
            pair = out[p["currency"]].setdefault(p["account"], [Decimal(0), Decimal(0)])
            pair[0 if p["side"] == "debit" else 1] += Decimal(p["amount"])
    return out


def natural(account: str, debits: Decimal, credits: Decimal) -> Decimal:
    return debits - credits if account.startswith("assets:") else credits - debits


def api_balances(service: Service, currency: str) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """Every account's (debits, credits, balance), page by page."""
    out: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    after = ""
    while True:
        page = service.json(f"/v1/balances?currency={currency}&limit=500{after}")["accounts"]
        out |= {a["account"]: (Decimal(a["debits"]), Decimal(a["credits"]),
                               Decimal(a["balance"])) for a in page}
        if len(page) < 500:
            return out
        after = f"&after={quote(page[-1]['account'])}"


def as_csv_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """JSON rows as the API writes them to CSV (null empty, booleans lower case,
    nested values JSON)."""
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return json.dumps(value, separators=(",", ":"))
        return str(value)
    return [{k: cell(v) for k, v in row.items()} for row in rows]


def assert_csv_equals_json(service: Service, path: str, key: str) -> list[dict[str, Any]]:
    rows = service.json(path)[key]
    status, text = service.get(path, accept="text/csv")
    assert status == 200, (path, text)
    parsed = list(csv.DictReader(io.StringIO(text)))
    expected = as_csv_rows(rows)
    assert len(parsed) == len(expected), path
    for got, want in zip(parsed, expected, strict=True):
        for column, value in want.items():
            if value.startswith(("[", "{")):
                assert json.loads(got[column]) == json.loads(value), (path, column)
            else:
                assert got[column] == value, (path, column)
    return rows


def parties_of(steps: list[Any]) -> list[dict[str, Any]]:
    """Every worker and client the steps name, registered and verified (SPEC §10)."""
    named = sorted({value for step in steps for key, value in step["data"].items()
                    if key in ("worker_id", "client_id")})
    return [cloud_event(f"party-{n}", "party.registered", START - timedelta(days=1), {
        "party_id": party_id, "kind": "individual", "name": party_id, "name_kana": "ﾃｽﾄ",
        "bank_account": bank_account(f"{n:07d}", "ﾃｽﾄ"), "kyc_verified": True})
        for n, party_id in enumerate(named, start=1)]


def publish_payout_results(bootstrap: str, results: list[dict[str, Any]]) -> None:
    publish(bootstrap, Topics(""), results)


# The service end to end -----------------------------------------------------------------


def test_the_service_end_to_end_on_embedded_defaults(running: Service, tmp_path: Path) -> None:
    service = running
    bootstrap = service.bootstrap()
    steps = script("e2e")
    expected_events, escrows = run(steps, PLANS)
    publish(bootstrap, Topics(""), [*parties_of(steps), *steps])
    expected = expected_balances(expected_events)

    # The read models catch up with exactly the money of the in-memory run.
    def caught_up() -> bool:
        return all(api_balances(service, c) == {
            a: (d, cr, natural(a, d, cr)) for a, (d, cr) in accounts.items()}
            for c, accounts in expected.items())

    wait_until(caught_up, CATCH_UP_S, "the projections", service)

    # Escrows equal the aggregates of the in-memory run.
    for job_id, escrow in escrows.items():
        body = service.json(f"/v1/escrows/{job_id}")
        assert (body["format"], body["state"], body["currency"], body["client_id"]) == (
            escrow.format, escrow.state, escrow.currency, escrow.client_id)
        for name, value in (("funded", escrow.funded), ("held", escrow.held),
                            ("released", escrow.released), ("refunded", escrow.refunded),
                            ("fees", escrow.fees), ("withholding", escrow.withheld)):
            assert Decimal(body[name]) == value.amount, (job_id, name)
        assert {i["item_id"]: (i["state"], Decimal(i["amount"])) for i in body["items"]} == {
            i.item_id: (i.state, i.amount.amount) for i in escrow.items.values()}
    assert service.get("/v1/escrows/no-such-job")[0] == 404

    # A payout run (joining the embedded PostgreSQL under the same directory).
    payable = {a: natural(a, d, c) for a, (d, c) in expected["JPY"].items()
               if a.startswith(("liabilities:worker_payable:", "liabilities:client_refundable:"))
               and natural(a, d, c) > 0}
    csv_path = tmp_path / "batch.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEMENT_")}
    done = subprocess.run([sys.executable, "-m", "settlement.cli", "payouts", "run", "--now",
                           (START + timedelta(hours=4)).isoformat(), "--csv", str(csv_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    batch = list(csv.DictReader(csv_path.open()))
    paid = {row["account"]: Decimal(row["amount"]) for row in batch if row["currency"] == "JPY"}
    assert paid == {a: v for a, v in payable.items() if v >= 1000}  # the rest carried over
    settled, failed = batch[0], batch[1]
    publish_payout_results(bootstrap, [
        cloud_event("e2e-bank-1", "payout.settled", START + timedelta(hours=5),
                    {"payout_id": settled["payout_id"], "bank_ref": "bank-1"}),
        cloud_event("e2e-bank-2", "payout.failed", START + timedelta(hours=5, minutes=1),
                    {"payout_id": failed["payout_id"], "reason": "account closed"}),
    ])

    def statuses() -> dict[str, str]:
        return {p["payout_id"]: p["status"] for p in service.json("/v1/payouts?limit=500")
                ["payouts"]}

    wait_until(lambda: statuses().get(settled["payout_id"]) == "settled"
               and statuses().get(failed["payout_id"]) == "failed", CATCH_UP_S,
               "the payout results", service)
    assert len(statuses()) == len(batch)
    assert {p["payout_id"] for p in service.json("/v1/payouts?status=initiated")["payouts"]} == {
        row["payout_id"] for row in batch[2:]}
    after = api_balances(service, "JPY")
    before_cash = natural("assets:safeguarded_cash", *expected["JPY"]["assets:safeguarded_cash"])
    assert after["assets:safeguarded_cash"][2] == before_cash - Decimal(settled["amount"])
    in_transit = sum((Decimal(r["amount"]) for r in batch[2:] if r["currency"] == "JPY"),
                     Decimal(0))
    assert after["liabilities:payouts_in_transit"][2] == in_transit
    assert after[failed["account"]][2] == Decimal(failed["amount"])  # back where it came from
    assert all(after[a][2] == (v if v < 1000 else 0)  # carried over, else paid
               for a, v in payable.items() if a != failed["account"])

    # As of an instant before the payout run: the ledger and receivables then.
    before = quote((START + timedelta(hours=3)).isoformat())
    then = service.json(f"/v1/trial-balance?currency=JPY&as_of={before}&limit=500")
    assert {a["account"]: [Decimal(a["debits"]), Decimal(a["credits"])]
            for a in then["accounts"]} == expected["JPY"]
    owed_then = service.json(f"/v1/receivables?currency=JPY&as_of={before}&limit=500")
    assert Decimal(owed_then["totals"]["payable"]) == sum(
        (v for a, v in payable.items() if a.startswith("liabilities:worker_payable:")),
        Decimal(0))

    for currency in ("JPY", "USD"):
        check_ledger_views(service, currency)
    check_lists_and_auth(service)
    assert service.stop() == 0
    events = [e.get("event") for e in service.log_lines()]
    assert "run.stopped" in events and "run.child_exited" not in events


def check_ledger_views(service: Service, currency: str) -> None:
    """Trial balance, entries, receivables and safeguarding agree with the balances."""
    trial = service.json(f"/v1/trial-balance?currency={currency}&limit=500")
    assert trial["total_debits"] == trial["total_credits"]
    balance = {a["account"]: Decimal(a["balance"]) for a in trial["accounts"]}
    liabilities = sum((b for a, b in balance.items() if a.startswith("liabilities:")), Decimal(0))
    revenue = sum((b for a, b in balance.items() if a.startswith("revenue:")), Decimal(0))
    assert balance["assets:safeguarded_cash"] == liabilities + revenue
    prefix = service.json(f"/v1/balances?currency={currency}&prefix=liabilities:&limit=500")
    assert Decimal(prefix["total"]) == liabilities

    revenue_accounts = sorted(a for a in balance if a.startswith("revenue:"))
    for account in ("assets:safeguarded_cash", *revenue_accounts[:1]):
        entries = assert_csv_equals_json(
            service, f"/v1/accounts/{quote(account)}/entries?currency={currency}&limit=500",
            "entries")
        assert Decimal(entries[-1]["running_balance"]) == balance[account]

    receivables = service.json(f"/v1/receivables?currency={currency}&limit=500")
    payable = sum((b for a, b in balance.items() if a.startswith("liabilities:worker_payable:")),
                  Decimal(0))
    assert Decimal(receivables["totals"]["payable"]) == payable
    rows = receivables["rows"]
    assert Decimal(receivables["totals"]["protected"]) == sum(
        (Decimal(r["amount"]) for r in rows if r["protected"]), Decimal(0))
    assert_csv_equals_json(service, f"/v1/receivables?currency={currency}&limit=500", "rows")

    safe = service.json(f"/v1/safeguarding?currency={currency}")
    assert Decimal(safe["cash"]) == balance["assets:safeguarded_cash"]
    assert Decimal(safe["obligations"]) == liabilities
    assert Decimal(safe["shortfall"]) == max(liabilities - balance["assets:safeguarded_cash"],
                                             Decimal(0))


def check_lists_and_auth(service: Service) -> None:
    assert_csv_equals_json(service, "/v1/balances?currency=JPY&limit=500", "accounts")
    assert_csv_equals_json(service, "/v1/trial-balance?currency=USD&limit=500", "accounts")
    assert_csv_equals_json(service, "/v1/payouts?limit=500", "payouts")
    events = assert_csv_equals_json(service, "/v1/audit/events?limit=500", "events")
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert {e["type"] for e in events} >= {"settlement.payout_initiated",
                                           "settlement.payout_settled",
                                           "settlement.payout_failed"}
    verify = service.json("/v1/audit/verify")
    assert verify["ok"] is True and verify["events_checked"] >= len(events)
    status, text = service.get("/metrics", None)
    assert status == 200 and "# TYPE" in text
    # Auth: no token 401, finance on audit 403, auditor everywhere 200.
    assert service.get("/v1/balances", None)[0] == 401
    assert service.get("/v1/balances", "wrong-token")[0] == 401
    assert service.get("/v1/audit/events", FINANCE)[0] == 403
    assert service.get("/v1/audit/verify", FINANCE)[0] == 403
    assert service.get("/v1/trial-balance?currency=JPY", FINANCE)[0] == 200
    for path in ("/v1/balances?currency=JPY", "/v1/trial-balance?currency=USD",
                 "/v1/receivables?currency=JPY", "/v1/safeguarding?currency=JPY",
                 "/v1/payouts", "/v1/audit/events", "/v1/audit/verify", "/v1/escrows/e2e-project",
                 "/v1/accounts/assets:safeguarded_cash/entries?currency=JPY"):
        assert service.get(path, AUDITOR)[0] == 200, path


# SIGTERM under load, restart ----------------------------------------------------------------


def load(prefix: str, jobs: int) -> list[dict[str, Any]]:
    """Many small projects, each contracted, funded, delivered and accepted."""
    events = []
    for n in range(jobs):
        job = f"{prefix}-{n:04d}"
        rows = [
            ("project.contracted", {"job_id": job, "client_id": f"client-{n % 7}",
                                    "worker_id": f"worker-{n % 11}", "fee_plan": "tiered",
                                    "milestones": [{"milestone_id": "m1",
                                                    "amount": money(str(1000 + n))}]}),
            ("project.milestone_funded", {"job_id": job, "milestone_id": "m1",
                                          "amount": money(str(1000 + n)),
                                          "payment_ref": f"pay-{n}"}),
            ("project.milestone_delivered", {"job_id": job, "milestone_id": "m1"}),
            ("project.milestone_accepted", {"job_id": job, "milestone_id": "m1"}),
        ]
        events += [cloud_event(f"{job}-{k}", type_, START + timedelta(seconds=n * 4 + k), data)
                   for k, (type_, data) in enumerate(rows)]
    return events


def publish_slowly(bootstrap: str, topics: Topics, events: list[dict[str, Any]],
                   chunk: int = 100, pause_s: float = 0.1) -> None:
    for n in range(0, len(events), chunk):
        publish(bootstrap, topics, events[n:n + chunk])
        time.sleep(pause_s)


def test_sigterm_under_load_then_restart_loses_and_duplicates_nothing(
        tmp_path: Path, broker: str, topic_prefix: str) -> None:
    """On a broker that outlives the service (as a real Kafka does) and the embedded
    PostgreSQL under the service's directory: stop it with SIGTERM while it is busy,
    start it again, and the result equals applying every event once."""
    events = [*marketplace_day(START, "load"), *load("load", 800)]
    _, escrows = run(events, PLANS)
    reference_events = run(events, PLANS)[0]
    env = service_env(free_port(), SETTLEMENT_KAFKA_BOOTSTRAP=broker,
                      SETTLEMENT_TOPIC_PREFIX=topic_prefix)
    with embedded_postgres(tmp_path / ".settlement") as url:  # joined, not owned, by the service
        app = SettlementApplication(pg_env(url))
        try:
            first = start_service(tmp_path, env, log_name="first.log")
            # The marketplace keeps publishing while the service stops and starts again.
            publisher = threading.Thread(target=publish_slowly,
                                         args=(broker, Topics(topic_prefix), events))
            publisher.start()
            wait_until(lambda: (app.recorder.max_notification_id() or 0) > 200, CATCH_UP_S,
                       "the first events stored", first)
            assert first.stop() == 0
            stored_then = app.recorder.max_notification_id() or 0
            second = start_service(tmp_path, env, log_name="second.log")
            try:
                publisher.join(CATCH_UP_S)
                total = len(reference_events)
                # Counted, not the highest id: a rolled-back insert leaves a gap in ids.
                wait_until(lambda: stored_event_count(app) >= total, CATCH_UP_S,
                           "every event stored", second)
                expected = expected_balances(reference_events)

                def projected() -> bool:
                    return api_balances(second, "JPY") == {
                        a: (d, c, natural(a, d, c)) for a, (d, c) in expected["JPY"].items()}

                wait_until(projected, CATCH_UP_S, "the projections", second)
                audit = second.json("/v1/audit/events?limit=500")["events"]
                after, seen = 0, 0
                while audit:
                    seen += len(audit)
                    after = audit[-1]["position"]
                    audit = second.json(f"/v1/audit/events?after={after}&limit=500")["events"]
                assert seen == total
                assert second.stop() == 0
            finally:
                if second.process.poll() is None:
                    second.process.kill()
            assert 0 < stored_then < total, "the SIGTERM did not come during the load"
            assert stored_event_count(app) == total  # nothing stored twice
            assert digests(app, escrows) == {j: e.state_digest()
                                             for j, e in sorted(escrows.items())}
            assert len(app.store.select_commands([e["id"] for e in events])) == len(events)
        finally:
            app.close()


def test_the_demo_prints_where_to_look_and_its_token_works(tmp_path: Path) -> None:
    """`make run`: `settlement run --demo` with no tokens configured."""
    env = service_env(free_port())
    del env["SETTLEMENT_API_TOKENS"]
    service = start_service(tmp_path, env, "--demo")
    try:
        text = wait_until(lambda: "settlement demo ready" in (t := service.log_path.read_text(
            errors="replace")) and "trial balance:" in t and t, CATCH_UP_S, "the demo", service)
        lines = dict(line.strip().split(":", 1) for line in text.splitlines()
                     if line.startswith("  ") and ":" in line)
        token = lines["auditor token"].strip()
        url = lines["trial balance"].strip()
        assert url == f"{service.api}/v1/trial-balance?currency=JPY"
        assert lines["API"].strip().startswith(service.api)
        trial = service.json("/v1/trial-balance?currency=JPY", token)
        assert trial["total_debits"] == trial["total_credits"] != "0"
        payouts = service.json("/v1/payouts", token)["payouts"]
        # The month-end closing: four payouts (worker-4's 836 yen carried over).
        assert sorted(p["status"] for p in payouts) == [
            "failed", "initiated", "initiated", "settled"]
        assert len(list((tmp_path / ".settlement" / "payouts").glob("*.csv"))) == 1
        [file] = (tmp_path / ".settlement" / "payouts").glob("*.zengin")
        assert "Zengin file:" in text and file.read_bytes()[:4] == b"1210"
        run = service.json("/v1/payout-runs/closing-2026-11-30", token)
        assert run["summary"]["files"][0]["transfers"] == 4
        held = service.json("/v1/payouts/held?run_id=closing-2026-11-30", token)["holds"]
        assert [(h["party_id"], h["status"]) for h in held] == [("worker-4", "carried_over")]
        assert service.stop() == 0
    finally:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()
