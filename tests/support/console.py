"""The finance console under test: a populated ledger with a few hostile names,
signing in through the form, the figures of a page as the page states them
(`<data value>` beside each formatted amount), the API answers to compare them
with, and the API served by uvicorn in a thread for a real browser."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI

from support.api import START

# Past the 60-day deadline of the day's deliveries, within the chart's 90 days.
NOW = START + timedelta(days=70)
# Names no marketplace input could carry (SPEC §3 refuses them), written into the
# read models directly: pages must show them as text and never run them.
HOSTILE_CLIENT = '<img src=x onerror="window.__owned=1">'
HOSTILE_PARTY = "<script>window.__owned=2</script>"
HOSTILE_JOB = "hostile-job"


def add_hostile_names(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO projections.escrows VALUES (%s, 'project', 'funded', 'JPY', %s, 0, 0, "
            "0, 0, 0, 0, 1, %s, %s)", (HOSTILE_JOB, HOSTILE_CLIENT, START, START))
        conn.execute(
            "INSERT INTO projections.escrow_items VALUES (%s, 'm1', 'milestone', 'contracted', 0, "
            "'JPY', %s, NULL, 0, 0)", (HOSTILE_JOB, HOSTILE_PARTY))
        conn.execute(
            "INSERT INTO projections.payouts VALUES ('po-hostile', 'client', %s, 'JPY', 1, "
            "'initiated', '[]', 903)", (HOSTILE_PARTY,))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: Any, token: str, base: str = "http://testserver") -> Any:
    """Sign in through the form as a browser would (same-origin POST); the response
    to the POST (a 303 to the console when the token is accepted)."""
    form = client.get("/console/sign-in")
    return client.post("/console/sign-in", data={
        "csrf": csrf_of(form.text), "token": token, "next": "/console/"},
        headers={"Origin": base, "Sec-Fetch-Site": "same-origin"}, follow_redirects=False)


class _Figures(HTMLParser):
    """`id` → the `value` of the first `<data>` inside the element with that id."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str | None] = []
        self.figures: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "data":
            for owner in reversed(self.open):
                if owner and owner not in self.figures:
                    self.figures[owner] = found.get("value") or ""
                    break
        elif tag not in ("br", "input", "img", "link", "meta"):
            self.open.append(found.get("id"))

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("data", "br", "input", "img", "link", "meta") and self.open:
            self.open.pop()


def figures(html: str) -> dict[str, str]:
    parser = _Figures()
    parser.feed(html)
    return parser.figures


def api_overview(api: Any, currency: str, headers: dict[str, str]) -> dict[str, str]:
    """The overview's figures as the API gives them (`api` an httpx-like client)."""
    def get(path: str, **params: Any) -> dict[str, Any]:
        response = api.get(path, params={"currency": currency, **params}, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    safe = get("/v1/safeguarding")
    receivables = get("/v1/receivables", limit=1000)
    overdue = [r for r in receivables["rows"] if r["overdue"]]
    assert receivables["totals"]["overdue"] == str(sum(Decimal(r["amount"]) for r in overdue))
    return {
        "cash": safe["cash"], "obligations": safe["obligations"],
        "coverage-ratio": safe["coverage_ratio"] or "", "shortfall": safe["shortfall"],
        "owed-workers": get("/v1/balances", prefix="liabilities:worker_payable:")["total"],
        "refundable-clients": get("/v1/balances",
                                  prefix="liabilities:client_refundable:")["total"],
        "in-transit": get("/v1/balances", account="liabilities:payouts_in_transit")["total"],
        "overdue-count": str(len(overdue)), "overdue-amount": receivables["totals"]["overdue"],
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app on a free local port, served by uvicorn in a thread; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, name="console-uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(30)


def api_client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30)
