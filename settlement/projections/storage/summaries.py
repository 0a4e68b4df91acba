"""Summary rows beside the read models, so that the API's totals beside a page
(balances `total`, trial-balance sums, safeguarding, receivables `totals`) read
a row or two, not every matching row, whatever the size of the data.

- `balance_totals` (currency, prefix): Σ debits, Σ credits and Σ balance on the
  natural side (`NATURAL`) of the `balances` rows whose account starts with
  `prefix`, for `prefix` = '' and every prefix of an account code that ends at a
  `:` (`liabilities:`, `liabilities:worker_payable:`, …): exactly the prefixes a
  `starts_with(account, prefix)` filter ending in `:` (or none) matches by.
- `balance_days` (account, currency, day) and `balance_total_days` (currency,
  prefix, day): the same sums over each UTC day's entries, per account and per
  prefix. A balance as of T is the days before T's day plus T's day's entries
  up to T (the API's as-of answers): an index walk of the account's (prefix's)
  days and one day of entries, whatever the length of the history.
- `balance_blocks` (account, currency, block): the same sums over each block of
  4,096 event positions (`BLOCK_BITS`), so an account's balance up to a position (the entries'
  `running_balance`) is its blocks before plus the entries of one block.
- `receivable_totals` (currency, scope, party_id): the `receivables` rows of a
  currency (`scope` 'all', party_id '') or of one worker ('worker') or client
  ('client'): how many (`rows`), Σ `amount` protected and unprotected, Σ `net`
  payable (released, not paid out), each with its `_n` (below). A row exists
  while a receivable does (one whose count falls to 0 is deleted), as a GROUP
  BY over the rows would give.
  `overdue` depends on the instant asked about, so it is not kept here: the API
  sums it over the open claims past their deadline (a partial index).

The live projector keeps them in the transaction that writes the rows (`writes`:
the balance totals from the batch's balance deltas, summed per prefix here,
`prefix_sums`; the receivable totals from the batch's staging tables, the
receivables before and after the upsert and the `paid_out` flags before they
flip), adding deltas in key order after the rows themselves, so two projectors
lock summary rows in one order. A bulk rebuild and the 2 → 3 migration `fill`
them from the rows once; the rebuild/live digests compare both ways. A sum
keeps the decimals a sum over the rows would print with (the answers do not
change, only their cost): a balance total is a sum of the same deltas as the
balance rows it sums; a receivable total counts the rows that put a value with
decimals into it (`<sum>_n`) and is rounded to the currency's places while there
is one, to none when there is not (a sum of `0`s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import Cursor, sql
from psycopg.rows import tuple_row

from settlement.projections.model.receivables import PAYABLE_STATES

# Tables (see `schema.TABLES`) ------------------------------------------------------

BALANCE_TOTALS = ("balance_totals", "currency text NOT NULL, prefix text NOT NULL, "
                  "debits numeric NOT NULL, credits numeric NOT NULL, "
                  "balance numeric NOT NULL", ("currency", "prefix"))
BALANCE_DAYS = ("balance_days", "account text NOT NULL, currency text NOT NULL, "
                "day date NOT NULL, debits numeric NOT NULL, credits numeric NOT NULL",
                ("account", "currency", "day"))
BALANCE_TOTAL_DAYS = ("balance_total_days", "currency text NOT NULL, prefix text NOT NULL, "
                      "day date NOT NULL, debits numeric NOT NULL, credits numeric NOT NULL, "
                      "balance numeric NOT NULL", ("currency", "prefix", "day"))
BALANCE_BLOCKS = ("balance_blocks", "account text NOT NULL, currency text NOT NULL, "
                  "block bigint NOT NULL, debits numeric NOT NULL, credits numeric NOT NULL",
                  ("account", "currency", "block"))
# A block: the 4,096 positions p with the same p >> BLOCK_BITS. A balance up to a
# position reads at most one block's entries of the account and its blocks before
# (at 10,000,000 events, the busiest account's: ~2,400 rows and ≤ 4,096 entries).
BLOCK_BITS = 12
RECEIVABLE_TOTALS = ("receivable_totals", "currency text NOT NULL, scope text NOT NULL "
                     "CHECK (scope IN ('all', 'worker', 'client')), party_id text NOT NULL, "
                     "rows bigint NOT NULL, protected numeric NOT NULL, "
                     "protected_n bigint NOT NULL, "
                     "unprotected numeric NOT NULL, unprotected_n bigint NOT NULL, "
                     "payable numeric NOT NULL, payable_n bigint NOT NULL",
                     ("currency", "scope", "party_id"))

# A balance on its natural side (`ledger.accounts.natural_sign`): assets and expenses
# debits − credits, the others credits − debits.
NATURAL = ("CASE WHEN starts_with({a}, 'assets:') OR starts_with({a}, 'expenses:') "
           "THEN {d} - {c} ELSE {c} - {d} END")
_PAYABLE = "ARRAY[{}]::text[]".format(", ".join(f"'{s}'" for s in sorted(PAYABLE_STATES)))

# The prefixes of `b.account` kept: '' and each one ending at a ':'.
_PREFIXES = ("LATERAL (SELECT '' AS prefix UNION ALL SELECT left(b.account, i) "
             "FROM generate_series(1, length(b.account)) AS i "
             "WHERE substr(b.account, i, 1) = ':') AS p")


def summary_prefix(prefix: str | None) -> str | None:
    """The `balance_totals.prefix` that answers a `starts_with(account, prefix)`
    filter, or None when no summary row does (a prefix not ending at a `:`)."""
    if prefix is None or prefix == "":
        return ""
    return prefix if prefix.endswith(":") else None


def _balance_sums(source: str, day: bool = False) -> str:
    """(currency, prefix[, day], debits, credits, balance) summed over `source` rows
    b (account, currency[, day], debits, credits)."""
    natural = NATURAL.format(a="b.account", d="b.debits", c="b.credits")
    keys, by = ("b.currency, p.prefix, b.day", "1, 2, 3") if day else (
        "b.currency, p.prefix", "1, 2")
    return (f"SELECT {keys}, sum(b.debits) AS debits, "
            f"sum(b.credits) AS credits, sum({natural}) AS balance "
            f"FROM {source} AS b, {_PREFIXES} GROUP BY {by} ORDER BY {by}")


# An entry's UTC day: `balance_days` and `balance_total_days` hold the sums of each.
ENTRY_DAY = "(time AT TIME ZONE 'UTC')::date"


def _block_sums() -> str:
    return ("SELECT account, currency, position >> " + str(BLOCK_BITS) + " AS block, "
            "coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS debits, "
            "coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS credits "
            "FROM {schema}.ledger_entries GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


_DAY_SUMS = ("SELECT account, currency, " + ENTRY_DAY + " AS day, "
             "coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS debits, "
             "coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS credits "
             "FROM {schema}.ledger_entries GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


def _contribution_columns(alias: str, sign: str, paid: str) -> str:
    """A receivable row's contribution to each of its totals (signed): each sum with
    the count of rows that put a value with decimals into it."""
    r = alias
    values = (("protected", f"{r}.protected", f"{r}.amount"),
              ("unprotected", f"NOT {r}.protected", f"{r}.amount"),
              ("payable", f"{r}.state = ANY({_PAYABLE}) AND NOT {paid}", f"{r}.net"))
    return ", ".join(
        f"CASE WHEN {when} THEN {sign}{value} ELSE 0 END AS {name}, "
        f"CASE WHEN {when} AND scale({value}) > 0 THEN {sign}1 ELSE 0 END AS {name}_n"
        for name, when, value in values)


def _contributions(alias: str, sign: str, paid: str) -> str:
    """A receivable row's contribution to its totals (signed), one row per scope."""
    r = alias
    return (f"SELECT {r}.currency, k.scope, k.party_id, {sign}1 AS rows, "
            f"{_contribution_columns(r, sign, paid)} "
            f"FROM {{rows}}, LATERAL (VALUES ('all', ''), ('worker', {r}.worker_id), "
            f"('client', {r}.client_id)) AS k(scope, party_id) WHERE k.party_id IS NOT NULL")


_SUMMED = ("protected", "unprotected", "payable")
_RECEIVABLE_SUMS = ("SELECT currency, scope, party_id, sum(rows) AS rows, "
                    + ", ".join(f"sum({n}) AS {n}, sum({n}_n) AS {n}_n" for n in _SUMMED)
                    + " FROM ({}) AS d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


def fill(cur: Cursor[Any], schema: sql.Identifier) -> None:
    """Every summary row computed again from the rows (a bulk rebuild, a migration)."""
    for statement in fill_statements():
        cur.execute(sql.SQL(statement).format(schema=schema))


# The tables `fill` writes (and reads back: the totals from the balances and days).
FILLED = (BALANCE_DAYS[0], BALANCE_BLOCKS[0], BALANCE_TOTAL_DAYS[0], BALANCE_TOTALS[0],
          RECEIVABLE_TOTALS[0])


def fill_statements() -> Sequence[str]:
    """`fill` as statements with a `{schema}` placeholder (the migration runs them)."""
    receivables = _contributions("r", "", "r.paid_out").format(
        rows="{schema}.receivables AS r")
    return (
        "DELETE FROM {schema}.balance_days",
        "INSERT INTO {schema}.balance_days " + _DAY_SUMS,
        "DELETE FROM {schema}.balance_blocks",
        "INSERT INTO {schema}.balance_blocks " + _block_sums(),
        "DELETE FROM {schema}.balance_total_days",
        "INSERT INTO {schema}.balance_total_days "
        + _balance_sums("{schema}.balance_days", day=True),
        "DELETE FROM {schema}.balance_totals",
        "INSERT INTO {schema}.balance_totals " + _balance_sums("{schema}.balances"),
        "DELETE FROM {schema}.receivable_totals",
        "INSERT INTO {schema}.receivable_totals " + _RECEIVABLE_SUMS.format(receivables),
    )


# The live projector's balance totals: summed here from the batch's balance and
# day deltas (the rows `writes` stages for `balances` and `balance_days`), a row per
# prefix (and day) added by one statement. Summed by PostgreSQL instead, expanding
# every staged row into its prefixes, they cost the projector's backend ~30 µs per
# event (docs/benchmarks.md, issue 21 item 2).

def prefixes(account: str) -> list[str]:
    """The `balance_totals` prefixes an account is summed into: '' and each
    prefix of it that ends at a ':' (as `_PREFIXES` expands it)."""
    found = [""]
    end = account.find(":")
    while end >= 0:
        found.append(account[:end + 1])
        end = account.find(":", end + 1)
    return found


def natural(account: str, debits: Decimal, credits: Decimal) -> Decimal:
    """`NATURAL` of one row."""
    if account.startswith(("assets:", "expenses:")):
        return debits - credits
    return credits - debits


def prefix_sums(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows (account, currency, *keys, debits, credits) summed per (currency, prefix,
    *keys): (currency, prefix, *keys, debits, credits, balance), as `_balance_sums`
    sums them (a numeric sum keeps the largest scale of its terms, as Decimal's does)."""
    sums: dict[tuple[Any, ...], list[Decimal]] = {}
    for account, currency, *keys, debits, credits in rows:
        balance = natural(account, debits, credits)
        for prefix in prefixes(account):
            key = (currency, prefix, *keys)
            total = sums.get(key)
            if total is None:
                sums[key] = [debits, credits, balance]
            else:
                total[0] += debits
                total[1] += credits
                total[2] += balance
    return [(*key, *total) for key, total in sums.items()]


DELTAS = sql.Identifier("stage_receivable_deltas")


def deltas_stage() -> sql.Composed:
    """This connection's table of receivable total deltas, one row per receivable
    changed (its contribution to each of its scopes' totals, less the stored row's
    in a row of its own), emptied by the transaction that fills it (`Store.write`).
    A row per scope instead (four a receivable) cost twice the server's CPU."""
    return sql.SQL(
        "CREATE TEMPORARY TABLE IF NOT EXISTS {} (currency text, worker_id text, "
        "client_id text, rows bigint, protected numeric, protected_n bigint, "
        "unprotected numeric, unprotected_n bigint, payable numeric, payable_n bigint) "
        "ON COMMIT PRESERVE ROWS").format(DELTAS)


def _changes(alias: str, sign: str, paid: str) -> str:
    """A receivable row's contribution to its totals (signed), in one row (`DELTAS`)."""
    r = alias
    return (f"SELECT {r}.currency, {r}.worker_id, {r}.client_id, {sign}1 AS rows, "
            f"{_contribution_columns(r, sign, paid)} FROM {{rows}}")


def receivable_deltas(schema: str) -> sql.Composed:
    """Before the receivables upsert: each staged row's contribution less the stored
    row's (whose `paid_out` the upsert keeps)."""
    # OFFSET 0: each staged row's stored row read by its key (an index probe). As a
    # join, the planner, which cannot tell how many rows a temporary table holds,
    # hashed every stored receivable each batch (a scan growing with the table).
    stored = ("LATERAL (SELECT * FROM {s}.receivables AS o WHERE o.job_id = n.job_id "
              "AND o.item_id = n.item_id OFFSET 0) AS o")
    new = _changes("n", "", "coalesce(o.paid_out, false)").format(
        rows=f"stage_receivables AS n LEFT JOIN {stored} ON true")
    old = _changes("o", "-", "o.paid_out").format(rows=f"stage_receivables AS n, {stored}")
    return sql.SQL(f"INSERT INTO {{d}} {new} UNION ALL {old}").format(
        d=DELTAS, s=sql.Identifier(schema))


def paid_out_deltas(schema: str, paid: sql.Composable) -> sql.Composed:
    """Before `PaidOut` flips `paid_out` to `paid` (its expression over r): the
    payable net of released claims that become paid out (−) or unpaid again (+)."""
    return sql.SQL(
        "INSERT INTO {d} SELECT r.currency, r.worker_id, r.client_id, 0, 0, 0, 0, 0, "
        "CASE WHEN {paid} THEN -r.net ELSE r.net END, "
        "CASE WHEN scale(r.net) = 0 THEN 0 WHEN {paid} THEN -1 ELSE 1 END "
        "FROM {s}.receivables AS r JOIN (SELECT DISTINCT job_id, item_id "
        "FROM stage_paid_out) AS u ON r.job_id = u.job_id AND r.item_id = u.item_id "
        "WHERE r.state = ANY({payable}) AND r.paid_out IS DISTINCT FROM {paid}").format(
            d=DELTAS, s=sql.Identifier(schema), paid=paid, payable=sql.SQL(_PAYABLE))


# The deltas summed per scope ('all', and each worker and client that is not null),
# as `_RECEIVABLE_SUMS` sums `_contributions`' rows.
_SCOPED_SUMS = (
    "SELECT currency, CASE WHEN GROUPING(worker_id) = 0 THEN 'worker' "
    "WHEN GROUPING(client_id) = 0 THEN 'client' ELSE 'all' END AS scope, "
    "coalesce(worker_id, client_id, '') AS party_id, sum(rows) AS rows, "
    + ", ".join(f"sum({n}) AS {n}, sum({n}_n) AS {n}_n" for n in _SUMMED)
    + " FROM {d} GROUP BY GROUPING SETS ((currency), (currency, worker_id), "
    "(currency, client_id)) HAVING (GROUPING(worker_id) = 1 OR worker_id IS NOT NULL) "
    "AND (GROUPING(client_id) = 1 OR client_id IS NOT NULL) ORDER BY 1, 2, 3")


def receivable_totals_update(schema: str) -> tuple[sql.Composed, sql.Composed]:
    """Last: the deltas added to the totals in key order, then the rows of no
    receivable any more removed."""
    s = sql.Identifier(schema)
    # A sum is kept with the decimals a sum over the rows would have: the
    # currency's when a row puts a value with decimals into it, else none.
    assign = ", ".join(
        f"{n} = round(t.{n} + EXCLUDED.{n}, CASE WHEN t.{n}_n + EXCLUDED.{n}_n > 0 "
        f"THEN greatest(scale(t.{n}), scale(EXCLUDED.{n})) ELSE 0 END), "
        f"{n}_n = t.{n}_n + EXCLUDED.{n}_n" for n in _SUMMED)
    add = sql.SQL(
        "INSERT INTO {s}.receivable_totals AS t " + _SCOPED_SUMS
        + " ON CONFLICT (currency, scope, party_id) DO UPDATE SET rows = t.rows + EXCLUDED.rows, "
        + assign).format(s=s, d=DELTAS)
    # A total's count can fall to 0 only where the batch took rows from it (its
    # deltas' sum of `rows` negative; a key new to the table comes with a positive
    # one), so only those keys are looked up, each by its key (OFFSET 0: a probe of
    # the primary key, where the planner, blind to the staging table's size, scanned
    # every total each batch), and their rows deleted by their ctid.
    empty = sql.SQL(
        "DELETE FROM {s}.receivable_totals AS t USING (SELECT d.currency, k.scope, k.party_id "
        "FROM {d} AS d, LATERAL (VALUES ('all', ''), ('worker', d.worker_id), "
        "('client', d.client_id)) AS k(scope, party_id) WHERE k.party_id IS NOT NULL "
        "GROUP BY 1, 2, 3 HAVING sum(d.rows) < 0) AS k, "
        "LATERAL (SELECT o.ctid FROM {s}.receivable_totals AS o WHERE o.currency = k.currency "
        "AND o.scope = k.scope AND o.party_id = k.party_id AND o.rows = 0 OFFSET 0) AS z "
        "WHERE t.ctid = z.ctid").format(s=s, d=DELTAS)
    return add, empty


def unmatched(conn: psycopg.Connection[Any], schema: str) -> list[tuple[Any, ...]]:
    """Summary rows that differ from the sums over the rows, each side's row (none,
    if all is well): what a test or an auditor checks the upkeep against."""
    s = sql.Identifier(schema)
    scans = {"balance_totals": _balance_sums("{schema}.balances"),
             "balance_days": _DAY_SUMS,
             "balance_blocks": _block_sums(),
             "balance_total_days": _balance_sums(f"({_DAY_SUMS})", day=True),
             "receivable_totals": _RECEIVABLE_SUMS.format(_contributions(
                 "r", "", "r.paid_out").format(rows="{schema}.receivables AS r"))}
    found: list[tuple[Any, ...]] = []
    with conn.cursor(row_factory=tuple_row) as cur:
        for table, scan in scans.items():
            kept = sql.SQL("SELECT * FROM {}.{}").format(s, sql.Identifier(table))
            summed = sql.SQL(scan).format(schema=s)
            cur.execute(sql.SQL("(({0}) EXCEPT ALL ({1})) UNION ALL "
                                "(({1}) EXCEPT ALL ({0}))").format(kept, summed))
            found += [(table, *row) for row in cur]
    return found
