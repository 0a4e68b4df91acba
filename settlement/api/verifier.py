"""`GET /v1/audit/verify`: the hash chain recomputed over the event store; and the
last verification's result for `/metrics` (`settlement_audit_chain_ok`).

The audit log projection keeps a copy of each event's hash, but a copy cannot
vouch for the events it was copied from: verification reads the stored events
and their chain rows (`settlement.audit.verify.verify_chain`, the same code as
`settlement audit verify`) through an application opened read-only in spirit —
it never creates tables (CREATE_TABLE=n) and never writes.

A verification reads the whole history (seconds per 100,000 events), far too
much for a scrape: `/metrics` shows the last result, and when it is older than
`REFRESH_S` (or there is none) starts one in the background (`refresh_if_stale`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from settlement.api.database import Database
from settlement.api.queries.progress import EVENTS_TABLE
from settlement.infra.logging import get_logger
from settlement.ledger.chain import Verification

REFRESH_S = 3600.0  # how old the chain's last verification may get before another
CLOSE_WAIT_S = 10.0  # for a background verification to notice the API is stopping


@dataclass(frozen=True)
class Verified:
    result: Verification
    at: float  # Unix time the verification finished


class _Closing(Exception):
    """The API is stopping: a background verification gives up."""


class ChainVerifier:
    """Opens the application on first use; one verification at a time."""

    def __init__(self, database_url: str, database: Database) -> None:
        self._url, self._database = database_url, database
        self._app: Any = None
        self._lock = threading.Lock()  # held for a whole verification
        self._last: Verified | None = None
        self._refresher: threading.Thread | None = None
        self._refresher_lock = threading.Lock()  # never held long: scrapes take it
        self._closing = threading.Event()

    @property
    def last(self) -> Verified | None:
        return self._last

    def verify(self) -> Verification:
        from settlement.audit.verify import verify_chain
        from settlement.infra.pool import check

        with self._lock:
            if self._closing.is_set():
                raise _Closing("the API is stopping")
            # Through the API's pool: an unreachable database answers 503 at once.
            with self._database.connection() as conn:
                found = conn.execute("SELECT to_regclass(%s)", (EVENTS_TABLE,)).fetchone()
            if found is None or found[0] is None:
                result = Verification(True, 0, None)  # nothing was ever stored
            else:
                app = self._application()
                # Verifications are an hour apart: replace the idle connections a
                # database restart broke meanwhile, else each would fail once.
                check(app)
                result = verify_chain(app, progress=self._stop_if_closing)
            self._last = Verified(result, time.time())
            return result

    def refresh_if_stale(self) -> None:
        """Start a verification in the background if the last one is older than
        REFRESH_S; never waits for it."""
        last = self._last
        if last is not None and time.time() - last.at < REFRESH_S:
            return
        with self._refresher_lock:
            if self._closing.is_set() or (self._refresher and self._refresher.is_alive()):
                return
            self._refresher = threading.Thread(target=self._refresh, daemon=True,
                                               name="chain-verifier")
            self._refresher.start()

    def _refresh(self) -> None:
        try:
            self.verify()
        except _Closing:
            pass
        except Exception as exc:  # the last result stays; the next scrape tries again
            get_logger(component="api").warning("api.chain_verification_failed",
                                                error=str(exc))

    def _stop_if_closing(self, checked: int) -> None:
        if self._closing.is_set():
            raise _Closing(f"stopped after {checked} events")

    def _application(self) -> Any:
        if self._app is None:
            from settlement.application.app import SettlementApplication
            from settlement.infra.pool import bound, service_env
            from settlement.infra.postgres import pg_env

            # Every wait bounded as in the service's processes (settlement.infra.pool).
            self._app = SettlementApplication(
                {**pg_env(self._url), **service_env(), "CREATE_TABLE": "n"})
            bound(self._app)
        return self._app

    def close(self) -> None:
        self._closing.set()
        with self._refresher_lock:
            refresher = self._refresher
        if refresher is not None:
            refresher.join(CLOSE_WAIT_S)  # it stops at its next page (PAGE_EVENTS)
        # A verification stuck on the database past that must not hold the stop up.
        locked = self._lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            if self._app is not None:
                self._app.close()
                self._app = None
        finally:
            if locked:
                self._lock.release()


async def app_verifier(request: Request) -> ChainVerifier:
    verifier: ChainVerifier = request.app.state.verifier
    return verifier


Verifier = Annotated[ChainVerifier, Depends(app_verifier)]
