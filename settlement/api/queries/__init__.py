"""The API's reads of the projections schema, one module per resource (as
formance's `resource_*.go`): balances, entries, escrows, receivables,
safeguarding, payouts and audit. The routes of the same names serve them.

Balances "as of" an instant sum the ledger entries with `time ≤ as_of` (the
state after all events with time ≤ as_of); without `as_of` they come from the
running `balances` rows, which must equal the same sums over every entry
(`balances.unmatched_balances` checks it).

The API pages through these reads: every list is ordered by a key that `after`
continues from, and `limit` bounds each page. A page and the totals beside it
come from one statement (one snapshot, one round trip).
"""

from psycopg import sql

from settlement.projections.storage.schema import checked_name


def schema_id(schema: str) -> sql.Identifier:
    """The projections schema's name, checked, as an SQL identifier."""
    return sql.Identifier(checked_name(schema))
