"""The `settlement run --demo` day: a sample marketplace day published to Kafka as
a marketplace would, a payout run, one payout settled and one failed by the bank,
then where to look.

Everything has fixed ids and times, so running the demo again on the same state
directory changes nothing: the events are duplicates, the payout run is a no-op.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import psycopg

from settlement.application.app import SettlementApplication
from settlement.infra.bootstrap import application
from settlement.infra.config import Settings
from settlement.infra.logging import get_logger
from settlement.infra.topics import Topics
from settlement.ingest.publisher import MarketplacePublisher
from settlement.payouts.export import export_csv
from settlement.payouts.run import payout_run
from settlement.relay.records import is_settlement_event
from settlement.service.scenario import cloud_event, marketplace_day

DEMO_START = datetime(2026, 11, 26, 9, tzinfo=UTC)
DEMO_PREFIX = "demo"
PAYOUT_NOW = DEMO_START + timedelta(hours=1)
RESULTS_AT = DEMO_START + timedelta(hours=3)
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
    events = marketplace_day(DEMO_START, DEMO_PREFIX)
    _publish(bootstrap, topics, events)
    log.info("demo.published", events=len(events), topic=topics.jobs)
    app = application(url, settings)
    try:
        _wait(lambda: _recorded(app, [e["id"] for e in events]), stop, "ingesting the day")
        report = payout_run(app, PAYOUT_NOW)
        csv_path = settings.state_dir / "payouts" / f"{report.run_id}.csv"
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        export_csv(report.batch, csv_path)
        log.info("demo.payout_run", **report.summary(), csv=str(csv_path))
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
        f"a payout run ({len(report.batch)} payouts, batch {csv_path}), one settled, one failed.\n"
        f"  API:            {base}  (OpenAPI: {base}/openapi.json)\n"
        f"  {who + ':':<15} {shown}\n"
        f"  trial balance:  {base}/v1/trial-balance?currency=JPY\n"
        f"  try:            curl -H '{auth}' '{base}/v1/trial-balance?currency=JPY'\n"
        "Stop with Ctrl-C (SIGTERM).\n")
    out.flush()


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
