"""`settlement replay [--as-of T]` (SPEC §8): rebuild every projection from the
event store into a fresh schema and say, projection by projection, whether it
equals the live one.

Without `--as-of` each read model table of the replay is compared with the live
table (one digest per table, see `digest`). With `--as-of T` the replay holds
only the events with `time ≤ T` and is compared with what the live projections
answer "as of T": balances per account and currency (sums of the entries up to
T, amounts compared by value), the trial balance per currency, receivables
(each item's last state up to T), the ledger entries, the receivables history
and the audit log up to T. Equal means exactly equal. The other tables (escrow
summaries, items, job views, payouts) keep only their current state in the live
projections, so as of T they are rebuilt but not compared (`equal: null`).

Compare while the projector is caught up: the replay runs to the last position
stored when it starts, and the report gives the live projections' position.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import psycopg
from psycopg import sql

from settlement.application.app import SettlementApplication
from settlement.projections.rebuild.serial import PAGE_EVENTS, Rebuilt, rebuild
from settlement.projections.storage import schema as schemas
from settlement.projections.storage.digest import (
    TableDigest,
    digests,
    order_by,
    query_digest,
    snapshot,
)
from settlement.projections.storage.schema import DIGESTED, LIVE_SCHEMA
from settlement.projections.storage.store import Store

DEFAULT_SCHEMA = "replay"
_TABLES = {table.name: table for table in DIGESTED}
# Tables whose rows carry the time of their event: "as of T" keeps those with time ≤ T.
_TIMED = ("ledger_entries", "receivables_history", "audit_log")
_RECEIVABLE = sql.SQL("job_id, item_id, worker_id, client_id, state, amount, net, currency, "
                      "protected, delivered_at, due_by")


@dataclass(frozen=True)
class Check:
    """One projection compared: its replayed and live digests (None: not compared)."""

    name: str
    replay: TableDigest
    live: TableDigest | None

    @property
    def equal(self) -> bool | None:
        return None if self.live is None else self.replay == self.live

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"equal": self.equal, "replay_rows": self.replay.rows,
                               "replay_digest": self.replay.sha256}
        if self.live is None:
            out["note"] = "the live projection keeps only its current state"
        else:
            out.update(live_rows=self.live.rows, live_digest=self.live.sha256)
        return out


@dataclass(frozen=True)
class Report:
    rebuilt: Rebuilt
    live_schema: str
    live_found: bool
    live_position: int
    head: int
    as_of: datetime | None
    checks: list[Check]
    trial_balance: dict[str, dict[str, Any]]

    @property
    def equal(self) -> bool:
        return self.live_found and all(check.equal is not False for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        r = self.rebuilt
        return {
            "equal": self.equal, "schema": r.schema, "live_schema": self.live_schema,
            "live_found": self.live_found,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "head": self.head, "through_position": r.through_position,
            "live_position": self.live_position, "events": r.events,
            "events_after_as_of": r.skipped, "events_per_s": round(r.events_per_s),
            "seconds": round(r.seconds, 3), "digest": r.digest,
            "shards": r.shards, "shards_peak_rss_mb": round(r.shards_rss_mb),
            "projections": {check.name: check.as_dict() for check in self.checks},
            "trial_balance": self.trial_balance,
            "differing": [check.name for check in self.checks if check.equal is False],
        }


def replay(app: SettlementApplication, conn: psycopg.Connection[Any], *,
           schema: str = DEFAULT_SCHEMA, live: str = LIVE_SCHEMA, as_of: datetime | None = None,
           page_events: int = PAGE_EVENTS,
           progress: Callable[[int, int], None] | None = None) -> Report:
    """Rebuild into `schema` (a fresh or earlier replay schema, never anything
    else) and compare it with the live projections in `live`."""
    if schemas.checked_name(schema) == schemas.checked_name(live):
        raise schemas.SchemaError(f"cannot replay into the live schema {live}")
    head = app.recorder.max_notification_id() or 0
    rebuilt = rebuild(app, schema, conn=conn, through=head, page_events=page_events,
                      as_of=as_of, progress=progress)
    live_found = schemas.role_of(conn, live) == schemas.LIVE
    live_position = Store(conn, live).max_position() if live_found else 0
    if not live_found:
        checks = [Check(name, found, None) for name, found in rebuilt.tables.items()]
        return Report(rebuilt, live, False, 0, head, as_of, checks, {})
    if as_of is None:
        found = digests(conn, live).tables
        checks = [Check(name, rebuilt.tables[name], found[name]) for name in rebuilt.tables]
        with snapshot(conn):
            trial = _trial_balance(conn, schema, live, None)
    else:
        with snapshot(conn):
            checks = _as_of_checks(conn, rebuilt, schema, live, as_of)
            trial = _trial_balance(conn, schema, live, as_of)
    trial_check = Check("trial_balance", _digest_of(trial, "replay"), _digest_of(trial, "live"))
    return Report(rebuilt, live, True, live_position, head, as_of, [*checks, trial_check], trial)


def _as_of_checks(conn: psycopg.Connection[Any], rebuilt: Rebuilt, replayed: str, live: str,
                  as_of: datetime) -> list[Check]:
    r, v = sql.Identifier(replayed), sql.Identifier(live)
    params = {"as_of": as_of}
    checks = []
    for name in _TIMED:
        order = order_by(_TABLES[name])
        query = sql.SQL("SELECT t::text FROM {}.{} AS t WHERE time <= %(as_of)s ORDER BY {}")
        checks.append(Check(name, rebuilt.tables[name], query_digest(
            conn, query.format(v, sql.Identifier(name), order), params)))
    # Balances: the replay's running balances against the sums of the live entries
    # up to T (queries.balances as_of), amounts by value (trim_scale).
    balance_row = sql.SQL("SELECT (account, currency, trim_scale(debits), trim_scale(credits))"
                          '::text FROM ({}) b ORDER BY account COLLATE "C", currency COLLATE "C"')
    checks.append(Check(
        "balances",
        query_digest(conn, balance_row.format(sql.SQL("SELECT * FROM {}.balances").format(r))),
        query_digest(conn, balance_row.format(_balances_as_of(v)), params)))
    # Receivables: the replay's current rows against each item's last state up to T
    # (queries.receivables as_of; `paid_out` is not part of the history).
    receivable_row = sql.SQL("SELECT ({})::text FROM ({}) x "
                             'ORDER BY job_id COLLATE "C", item_id COLLATE "C"')
    current = sql.SQL("SELECT {} FROM {}.receivables").format(_RECEIVABLE, r)
    last_states = sql.SQL(
        "SELECT DISTINCT ON (job_id, item_id) {} FROM {}.receivables_history "
        "WHERE time <= %(as_of)s ORDER BY job_id, item_id, version DESC").format(_RECEIVABLE, v)
    checks.append(Check(
        "receivables",
        query_digest(conn, receivable_row.format(_RECEIVABLE, current)),
        query_digest(conn, receivable_row.format(_RECEIVABLE, last_states), params)))
    compared = {check.name for check in checks}
    return checks + [Check(name, found, None) for name, found in rebuilt.tables.items()
                     if name not in compared]


def _balances_as_of(schema: sql.Identifier) -> sql.Composable:
    return sql.SQL(
        "SELECT account, currency, "
        "coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS debits, "
        "coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS credits "
        "FROM {}.ledger_entries WHERE time <= %(as_of)s GROUP BY account, currency"
    ).format(schema)


def _trial_balance(conn: psycopg.Connection[Any], replayed: str, live: str,
                   as_of: datetime | None) -> dict[str, dict[str, Any]]:
    """Per currency, the replay's and the live total debits and credits (live: as of
    T when given) and whether each balances. Amounts as exact decimal strings."""
    r, v = sql.Identifier(replayed), sql.Identifier(live)
    live_source = (sql.SQL("SELECT * FROM {}.balances").format(v) if as_of is None
                   else _balances_as_of(v))
    totals = sql.SQL("SELECT currency, trim_scale(sum(debits)), trim_scale(sum(credits)) "
                     'FROM ({}) b GROUP BY currency ORDER BY currency COLLATE "C"')
    out: dict[str, dict[str, Any]] = {}
    for side, source in (("replay", sql.SQL("SELECT * FROM {}.balances").format(r)),
                         ("live", live_source)):
        for currency, debits, credits in conn.execute(totals.format(source),
                                                      {"as_of": as_of}).fetchall():
            out.setdefault(currency, {})[side] = {
                "debits": str(debits), "credits": str(credits), "balanced": debits == credits}
    for currency in out.values():
        currency["equal"] = currency.get("replay") == currency.get("live")
    return out


def _digest_of(trial: dict[str, dict[str, Any]], side: str) -> TableDigest:
    rows = {currency: totals.get(side) for currency, totals in trial.items()}
    text = json.dumps(rows, sort_keys=True).encode()
    return TableDigest(sum(1 for v in rows.values() if v), hashlib.sha256(text).hexdigest())


class Progress:
    """Progress on a stream (stderr): a bar redrawn in place on a terminal, else one
    JSON line every `interval_s` (events done and total, rate, ETA)."""

    def __init__(self, stream: TextIO = sys.stderr, interval_s: float | None = None,
                 label: str = "replay") -> None:
        self.stream, self.label = stream, label
        self.tty = stream.isatty()
        self.interval_s = interval_s if interval_s is not None else (0.2 if self.tty else 5.0)
        self.started = time.monotonic()
        self._shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._shown < self.interval_s:
            return
        self._shown = now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else None
        if self.tty:
            width = 30
            filled = width * done // total if total else width
            line = (f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                    f"{done:,}/{total:,} events {rate:,.0f}/s "
                    f"ETA {'?' if eta is None else f'{eta:,.0f}s'}")
            self.stream.write(line + ("\n" if done >= total else ""))
        else:
            self.stream.write(json.dumps({
                "progress": self.label, "events": done, "total": total,
                "events_per_s": round(rate), "eta_s": None if eta is None else round(eta, 1),
            }) + "\n")
        self.stream.flush()
