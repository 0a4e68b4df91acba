"""The `settlement run --demo` day: the sample parties and marketplace day published
to Kafka as a marketplace would, the month-end closing (its Zengin file and CSV
under the state directory), one payout settled and one failed by the bank, then
where to look.

Everything has fixed ids and times, so running the demo again on the same state
directory changes nothing: the events are duplicates, the payout run is a no-op.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import psycopg

from settlement.application.app import SettlementApplication
from settlement.infra.bootstrap import application
from settlement.infra.config import Settings
from settlement.infra.logging import get_logger
from settlement.infra.topics import Topics
from settlement.ingest.publisher import MarketplacePublisher
from settlement.payouts.closing import export_file
from settlement.payouts.export import export_csv
from settlement.payouts.policy import load_policy
from settlement.payouts.report import PayoutRunReport
from settlement.payouts.run import payout_run
from settlement.relay.records import is_settlement_event
from settlement.service.scenario import cloud_event, marketplace_day, marketplace_parties

DEMO_START = datetime(2026, 11, 26, 9, tzinfo=UTC)
DEMO_PREFIX = "demo"
# The month-end closing, run by the demo at its business time (its day has ended
# by the events' time then; the service's timer loop would run it as well).
CLOSING = date(2026, 11, 30)
CLOSED_AT = datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
RESULTS_AT = datetime(2026, 12, 15, 9, tzinfo=UTC)  # the closing's payment day
FILE_RECORDS_SHOWN = 2  # the header and the first transfer
WAIT_S = 120.0


class DemoStopped(Exception):
    """The service was asked to stop while the demo was waiting."""


def _wait(condition: Any, stop: threading.Event, what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: {what} not done within {timeout_s:.0f}s")
        if stop.wait(0.2):
            raise DemoStopped(what)


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _publish(bootstrap: str, topics: Topics, events: list[dict[str, Any]]) -> None:
    async def send() -> None:
        async with MarketplacePublisher(bootstrap, topics, client_id="settlement-demo") as pub:
            for event in events:
                await pub.publish(event)

    asyncio.run(send())


def _recorded(app: SettlementApplication, ids: list[str]) -> bool:
    return len(app.store.select_commands(ids)) == len(ids)


def _last_published(app: SettlementApplication) -> int:
    """The position of the last stored event the relay publishes (0 if none)."""
    head = app.recorder.max_notification_id() or 0
    start = max(1, head - 50)
    found = [n.id for n in app.recorder.select_notifications(start, 51, stop=head)
             if is_settlement_event(app.mapper.to_domain_event(n))]
    return max(found, default=0)


def _projected(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(max(position), 0) FROM projections.audit_log"
                           ).fetchone()
    return int(row[0]) if row else 0


def run_demo_day(settings: Settings, url: str, bootstrap: str, token: str | None,
                 out: TextIO, stop: threading.Event) -> None:
    log = get_logger(component="demo")
    topics = Topics(settings.topic_prefix)
    base = f"http://{settings.api_addr}"
    events = marketplace_parties(DEMO_START, DEMO_PREFIX) + marketplace_day(DEMO_START, DEMO_PREFIX)
    _publish(bootstrap, topics, events)
    log.info("demo.published", events=len(events), topic=topics.jobs)
    app = application(url, settings)
    try:
        _wait(lambda: _recorded(app, [e["id"] for e in events]), stop, "ingesting the day")
        report = payout_run(app, CLOSED_AT, closing=CLOSING,
                            policy=load_policy(settings.payout_config_path))
        csv_path, zengin_path = _export(report, settings.state_dir / "payouts")
        log.info("demo.closing", **report.summary(), csv=str(csv_path))
        results = _bank_results(report.batch)
        _publish(bootstrap, topics, results)
        _wait(lambda: _recorded(app, [e["id"] for e in results]), stop, "the bank's results")
        target = _last_published(app)
        _wait(lambda: _projected(url) >= target, stop, "the read models catching up")
        _wait(lambda: _healthy(base), stop, "the API")
    except DemoStopped:
        return
    finally:
        app.close()
    who = "auditor token" if token else "token"
    shown = token or "(one of SETTLEMENT_API_TOKENS)"
    auth = f"Authorization: Bearer {token or '<token>'}"
    out.write(
        "\nsettlement demo ready: a marketplace day (project, competition, task, a dispute),\n"
        + _closing_text(report, csv_path, zengin_path) +
        f"  console:        {base}/console/  (sign in with the {who})\n"
        f"  API:            {base}  (OpenAPI: {base}/openapi.json)\n"
        f"  {who + ':':<15} {shown}\n"
        f"  trial balance:  {base}/v1/trial-balance?currency=JPY\n"
        f"  try:            curl -H '{auth}' '{base}/v1/trial-balance?currency=JPY'\n"
        "Stop with Ctrl-C (SIGTERM).\n")
    out.flush()


def _export(report: PayoutRunReport, directory: Any) -> tuple[Any, Any]:
    """The run's batch as CSV and its Zengin file, under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, zengin_path = (directory / f"{report.run_id}.csv",
                             directory / f"{report.run_id}.zengin")
    export_csv(report.batch, csv_path)
    if report.files:
        export_file(report.files[0].content, zengin_path)
    return csv_path, zengin_path


def _closing_text(report: PayoutRunReport, csv_path: Any, zengin_path: Any) -> str:
    paid_on = report.window.payment_day.isoformat() if report.window else ""
    return (f"the {CLOSING.isoformat()} closing ({len(report.batch)} payouts, "
            f"{len(report.held)} held or carried over; batch {csv_path}), one settled, "
            f"one failed.\n  Zengin file:    {zengin_path}  (payment day {paid_on})\n"
            + "".join(f"    {line}\n" for line in _first_records(zengin_path)))


def _first_records(path: Any) -> list[str]:
    """The file's first records as text (the demo's sample accounts, not real ones)."""
    if not path.exists():
        return []
    records = path.read_bytes().split(b"\r\n")[:FILE_RECORDS_SHOWN]
    return [record.decode("shift_jis") for record in records]


def _bank_results(batch: list[Any]) -> list[dict[str, Any]]:
    """The bank settles the first payout of the batch and refuses the last one."""
    if not batch:
        return []
    results = [cloud_event(f"{DEMO_PREFIX}-bank-1", "payout.settled", RESULTS_AT,
                           {"payout_id": batch[0].payout_id, "bank_ref": "demo-bank-1"})]
    if len(batch) > 1:
        results.append(cloud_event(f"{DEMO_PREFIX}-bank-2", "payout.failed",
                                   RESULTS_AT + timedelta(minutes=1),
                                   {"payout_id": batch[-1].payout_id,
                                    "reason": "demo: account closed"}))
    return results
