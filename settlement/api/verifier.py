"""`GET /v1/audit/verify`: the hash chain recomputed over the event store.

The audit log projection keeps a copy of each event's hash, but a copy cannot
vouch for the events it was copied from: verification reads the stored events
and their chain rows (`settlement.audit.verify.verify_chain`, the same code as
`settlement audit verify`) through an application opened read-only in spirit —
it never creates tables (CREATE_TABLE=n) and never writes.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from settlement.ledger.chain import Verification


class ChainVerifier:
    """Opens the application on first use; one verification at a time."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._app: Any = None
        self._lock = threading.Lock()

    def verify(self) -> Verification:
        from settlement.audit.verify import verify_chain

        with self._lock:
            app = self._application()
            with psycopg.connect(self._url, autocommit=True) as conn:
                found = conn.execute("SELECT to_regclass(%s)",
                                     (app.recorder.events_table_name,)).fetchone()
            if found is None or found[0] is None:
                return Verification(True, 0, None)  # nothing was ever stored
            return verify_chain(app)

    def _application(self) -> Any:
        if self._app is None:
            from settlement.application.app import SettlementApplication
            from settlement.infra.postgres import pg_env

            self._app = SettlementApplication({**pg_env(self._url), "CREATE_TABLE": "n"})
        return self._app

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.close()
                self._app = None
