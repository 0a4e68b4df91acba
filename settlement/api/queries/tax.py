"""The reads behind payment statements and withholding (SPEC §12): what the
settlement events recorded, from the audit log (each event's `data` as
published), found through the ledger entries' time index and the audit log's
job and payout indexes; clients from `escrows`, names from `parties`.

Nothing is computed again here: a release's fee, tax, withholding and net are
the event's; the sums are in `settlement.tax.withholding`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from settlement.api.queries import schema_id
from settlement.api.queries.payouts import has_table
from settlement.core.months import Month
from settlement.tax.releases import RELEASE_TYPES, releases_in
from settlement.tax.remittance import PARTY_TYPE, REMITTANCE_PREFIX
from settlement.tax.statement import Statement
from settlement.tax.statement import statement as build_statement
from settlement.tax.withholding import Release

PAYOUT_INITIATED = "settlement.payout_initiated"
ItemKey = tuple[str, str]


def _rows(conn: psycopg.Connection[Any], query: sql.Composed,
          params: Sequence[Any] | dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def payout(conn: psycopg.Connection[Any], schema: str,
           payout_id: str) -> tuple[dict[str, Any], datetime, str] | None:
    """The payout's `payout_initiated` data, its time and the payout's status now."""
    if not has_table(conn, schema, "payouts"):
        return None
    query = sql.SQL(
        "SELECT a.data, a.time, p.status FROM {s}.payouts AS p JOIN {s}.audit_log AS a "
        "ON a.job_id IS NULL AND a.data->>'payout_id' = p.payout_id AND a.type = %s "
        "WHERE p.payout_id = %s AND p.party_type <> %s").format(s=schema_id(schema))
    found = _rows(conn, query, (PAYOUT_INITIATED, payout_id, PARTY_TYPE))
    return None if not found else (found[0]["data"], found[0]["time"], found[0]["status"])


def _releases(rows: Iterable[dict[str, Any]]) -> list[Release]:
    return [release for row in rows
            for release in releases_in(row["position"], row["time"], row["client_id"],
                                       row["data"])]


def item_releases(conn: psycopg.Connection[Any], schema: str,
                  keys: Sequence[ItemKey]) -> dict[ItemKey, Release]:
    """The release of each of `keys` (items released once each)."""
    if not keys:
        return {}
    query = sql.SQL(
        "SELECT a.position, a.time, a.data, e.client_id FROM {s}.audit_log AS a "
        "JOIN {s}.escrows AS e ON e.job_id = a.job_id "
        "WHERE a.job_id = ANY(%s) AND a.type = ANY(%s) ORDER BY a.position"
    ).format(s=schema_id(schema))
    rows = _rows(conn, query, (sorted({job for job, _ in keys}), list(RELEASE_TYPES)))
    wanted = set(keys)
    return {(r.job_id, r.item_id): r for r in _releases(rows) if (r.job_id, r.item_id) in wanted}


def withheld_releases(conn: psycopg.Connection[Any], schema: str, month: Month) -> list[Release]:
    """The releases of `month` that credited a withholding account."""
    return _releases_where(conn, schema, month.start, month.end,
                           "e2.account LIKE 'liabilities:withholding_tax:%%' "
                           "AND e2.side = 'credit'")


def releases(conn: psycopg.Connection[Any], schema: str, start: datetime,
             end: datetime) -> list[Release]:
    """Every release with `start` ≤ time < `end`."""
    return _releases_where(conn, schema, start, end,
                           "e2.account LIKE 'liabilities:escrow:%%' AND e2.side = 'debit' "
                           "AND e2.event_type = ANY(%(types)s)")


def _releases_where(conn: psycopg.Connection[Any], schema: str, start: datetime,
                    end: datetime, condition: str) -> list[Release]:
    if not has_table(conn, schema, "audit_log"):
        return []
    query = sql.SQL(
        "SELECT a.position, a.time, a.data, e.client_id FROM {s}.audit_log AS a "
        "JOIN {s}.escrows AS e ON e.job_id = a.job_id "
        "WHERE a.type = ANY(%(types)s) AND a.position IN (SELECT e2.position "
        "FROM {s}.ledger_entries AS e2 WHERE e2.time >= %(start)s AND e2.time < %(end)s "
        "AND " + condition + ") ORDER BY a.position").format(s=schema_id(schema))
    return _releases(_rows(conn, query, {"types": list(RELEASE_TYPES), "start": start,
                                         "end": end}))


def remittances(conn: psycopg.Connection[Any], schema: str,
                month: Month) -> list[dict[str, Any]]:
    """The month's remittances (in the `payouts` table: paid like payouts)."""
    if not has_table(conn, schema, "payouts"):
        return []
    query = sql.SQL(
        "SELECT payout_id AS remittance_id, party_id AS client_id, currency, amount, status "
        "FROM {}.payouts WHERE party_type = %s AND payout_id LIKE %s "
        "ORDER BY party_id, payout_id").format(schema_id(schema))
    return _rows(conn, query, (PARTY_TYPE, f"{REMITTANCE_PREFIX}{month.compact}-%"))


def parties(conn: psycopg.Connection[Any], schema: str,
            party_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """kind, name and address of each party registered (SPEC §10)."""
    if not party_ids or not has_table(conn, schema, "parties"):
        return {}
    query = sql.SQL("SELECT party_id, kind, name, address FROM {}.parties "
                    "WHERE party_id = ANY(%s)").format(schema_id(schema))
    return {row["party_id"]: row for row in _rows(conn, query, (list(party_ids),))}


def statement(conn: psycopg.Connection[Any], schema: str,
              payout_id: str) -> tuple[Statement, str] | None:
    """The payout's payment statement and its status now; None for no such payout."""
    found = payout(conn, schema, payout_id)
    if found is None:
        return None
    data, at, status = found
    keys = [(i["job_id"], i["item_id"]) for i in data.get("items") or ()]
    return build_statement(data, at, item_releases(conn, schema, keys)), status
