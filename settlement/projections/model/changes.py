"""One event, then a batch of events, to everything they change in the read models.

`project(job, items, event)` is the whole projection of one event: the job's new
view and every row, or None for an event already applied (its version is not
above the job's). `fold(events, jobs, items)` runs it over a batch, starting from
the views and items read from the store, and keeps the last state of each.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from settlement.projections.model.audit import AuditRow, audit_row
from settlement.projections.model.envelope import Event
from settlement.projections.model.errors import VersionGap
from settlement.projections.model.escrows import EscrowRow, ItemRow, escrow_row, item_row
from settlement.projections.model.fastinit import fast_init
from settlement.projections.model.invoices import (
    INVOICE_EVENTS,
    InvoiceRow,
    invoice_row,
    is_invoice,
    number_of,
)
from settlement.projections.model.jobs import JOB_EVENTS, evolve, job_of
from settlement.projections.model.ledger import BalanceDelta, Entry, balance_deltas, entries
from settlement.projections.model.parties import (
    HOLD_EVENTS,
    KEYED_EVENTS,
    PARTY_EVENTS,
    HoldRow,
    PartyRow,
    RunRow,
    hold_row,
    is_keyed,
    party_row,
    run_row,
)
from settlement.projections.model.payouts import (
    EVENT_STATUS,
    WORKER,
    PayoutItemRow,
    PayoutView,
    evolve_payout,
    is_payout,
    item_rows,
    payout_of,
)
from settlement.projections.model.receivables import (
    PAYABLE_STATES,
    ReceivableChange,
    ReceivableRow,
    change,
    receivable,
)
from settlement.projections.model.reconciliation import (
    BANK_FEE,
    STATEMENT_EVENTS,
    BankFeeRow,
    DecisionRow,
    StatementBalanceRow,
    StatementChunkRow,
    StatementLineRow,
    balance_rows,
    bank_fee_decision,
    bank_fee_row,
    chunk_rows,
    decision_rows,
    fee_line_of,
    is_bank_fee,
    line_rows,
)
from settlement.projections.model.views import ItemView, JobView

ItemKey = tuple[str, str]  # (job_id, item_id)
# The events of a job's own view (most of any history): `fold` takes them without
# asking first whether each is a party's, an invoice, a bank fee or a payout's.
_JOB_EVENTS = JOB_EVENTS - KEYED_EVENTS - INVOICE_EVENTS - {BANK_FEE} - EVENT_STATUS.keys()


@fast_init
@dataclass(frozen=True, slots=True)
class Projected:
    job: JobView
    items: dict[str, ItemView]
    entries: list[Entry]
    audit: AuditRow
    history: list[ReceivableChange]


def is_repeat(job: JobView | None, event: Event) -> bool:
    """True for an event the view already holds; `VersionGap` if one before it is missing."""
    seen = 0 if job is None else job.version
    if event.version <= seen:
        return True
    if event.version != seen + 1:
        raise VersionGap(f"job {event.job_id}: version {event.version} at position "
                         f"{event.position} follows version {seen}")
    return False


def project(job: JobView | None, items: Mapping[str, ItemView], event: Event) -> Projected | None:
    # Ledger and audit rows are the same for every event; what an event folds into
    # and how repeats are told apart depends on its stream (payouts: `fold`).
    job_of(event)
    if is_repeat(job, event):
        return None
    step = evolve(job, items, event)
    history = [change(step.job, item, event) for item in step.items.values()]
    return Projected(step.job, step.items, entries(event), audit_row(event), history)


@dataclass
class Changes:
    """What a batch adds: append-only rows per event, last states per job and item."""

    entries: list[Entry] = field(default_factory=list)
    audit: list[AuditRow] = field(default_factory=list)
    history: list[ReceivableChange] = field(default_factory=list)
    jobs: dict[str, JobView] = field(default_factory=dict)
    items: dict[ItemKey, ItemView] = field(default_factory=dict)
    payouts: dict[str, PayoutView] = field(default_factory=dict)
    # Rows of one event each (parties, payout runs, holds): a repeat is told apart
    # where they are written, so their audit rows are inserted unless present.
    parties: dict[str, PartyRow] = field(default_factory=dict)
    runs: dict[str, RunRow] = field(default_factory=dict)
    holds: dict[tuple[str, str, str, str], HoldRow] = field(default_factory=dict)
    keyed_audit: list[AuditRow] = field(default_factory=list)
    # Issued invoices (one event each, with postings): told apart from repeats in `fold`.
    invoices: dict[str, InvoiceRow] = field(default_factory=dict)
    # Statement lines and day balances: rows never changed, inserted unless present.
    statement_lines: list[StatementLineRow] = field(default_factory=list)
    statement_chunks: list[StatementChunkRow] = field(default_factory=list)  # stored lines
    statement_balances: list[StatementBalanceRow] = field(default_factory=list)
    statement_decisions: dict[str, DecisionRow] = field(default_factory=dict)
    # Booked bank charges (one event each, with postings): told apart from repeats in `fold`.
    bank_fees: dict[str, BankFeeRow] = field(default_factory=dict)
    duplicates: int = 0

    @property
    def applied(self) -> int:
        return len(self.audit) + len(self.keyed_audit)

    @property
    def max_position(self) -> int:
        return max((row.position for row in (*self.audit, *self.keyed_audit)), default=0)

    def keep(self, event: Event) -> None:
        """Take an event of `parties.KEYED_EVENTS`: its row, if the latest of its key."""
        if event.name in PARTY_EVENTS:
            _latest(self.parties, (row := party_row(event)).party_id, row)
        elif event.name in STATEMENT_EVENTS:
            self.statement_lines += line_rows(event)
            self.statement_chunks += chunk_rows(event)
            self.statement_balances += balance_rows(event)
            for decision in decision_rows(event):
                _latest(self.statement_decisions, decision.line_id, decision)
        elif event.name in HOLD_EVENTS:
            hold = hold_row(event)
            _latest(self.holds, (hold.run_id, hold.party_type, hold.party_id, hold.currency),
                    hold)
        else:
            _latest(self.runs, (run := run_row(event)).run_id, run)
        self.keyed_audit.append(audit_row(event))

    def take_keyed(self, other: Changes) -> None:
        """Keep the latest of `other`'s party, run and hold rows too."""
        for party_id, party in other.parties.items():
            _latest(self.parties, party_id, party)
        for run_id, run in other.runs.items():
            _latest(self.runs, run_id, run)
        for hold_key, hold in other.holds.items():
            _latest(self.holds, hold_key, hold)
        self.invoices.update(other.invoices)
        self.statement_lines += other.statement_lines
        self.statement_chunks += other.statement_chunks
        self.statement_balances += other.statement_balances
        for line_id, decision in other.statement_decisions.items():
            _latest(self.statement_decisions, line_id, decision)
        self.bank_fees.update(other.bank_fees)

    def balances(self) -> list[BalanceDelta]:
        return balance_deltas(self.entries)

    def escrows(self) -> list[EscrowRow]:
        return [escrow_row(self.jobs[job_id]) for job_id in sorted(self.jobs)]

    def item_rows(self) -> list[ItemRow]:
        return [item_row(self.jobs[key[0]], self.items[key]) for key in sorted(self.items)]

    def receivables(self) -> list[ReceivableRow]:
        # An item's last history row is its receivable: the same item, and a job's
        # client and currency never change (built again only for an item without one).
        last = {(c.row.job_id, c.row.item_id): c.row for c in self.history}
        return [last.get(key) or receivable(self.jobs[key[0]], self.items[key])
                for key in sorted(self.items)]

    def payout_rows(self) -> list[PayoutView]:
        return [self.payouts[payout_id] for payout_id in sorted(self.payouts)]

    def payout_items(self) -> list[PayoutItemRow]:
        return sorted((row for view in self.payout_rows() for row in item_rows(view)),
                      key=lambda r: (r.job_id, r.item_id, r.payout_id))

    def paid_out_keys(self) -> list[ItemKey]:
        """Receivables whose `paid_out` may have changed: items a worker payout of
        the batch names, and items the batch made payable."""
        keys = {(r.job_id, r.item_id) for r in self.payout_items() if r.party_type == WORKER}
        keys.update(key for key, item in self.items.items() if item.state in PAYABLE_STATES)
        return sorted(keys)


def _latest(rows: dict[Any, Any], key: Any, row: Any) -> None:
    if key not in rows or rows[key].position < row.position:
        rows[key] = row


def fold(events: Iterable[Event], jobs: Mapping[str, JobView],
         items: Mapping[ItemKey, ItemView],
         payouts: Mapping[str, PayoutView] | None = None,
         invoices: Collection[str] = (), bank_fees: Collection[str] = ()) -> Changes:
    """Project `events` in order from the stored `jobs`, `items` and `payouts`
    (those the events name) and the numbers of the stored `invoices` (the lines
    of the stored `bank_fees`) among those the events name; nothing is read or
    written here."""
    changes = Changes()
    views = dict(jobs)
    payout_views = dict(payouts or {})
    known: dict[str, dict[str, ItemView]] = {}  # per job: its items as the batch left them
    for (job_id, item_id), item in items.items():
        known.setdefault(job_id, {})[item_id] = item
    for event in events:
        if event.name not in _JOB_EVENTS and _take_other(changes, event, payout_views, invoices,
                                                         bank_fees):
            continue
        job_id = job_of(event)
        job_items = known.setdefault(job_id, {})
        result = project(views.get(job_id), job_items, event)
        if result is None:
            changes.duplicates += 1
            continue
        views[job_id] = changes.jobs[job_id] = result.job
        job_items.update(result.items)
        for item_id, item in result.items.items():
            changes.items[(job_id, item_id)] = item
        changes.entries += result.entries
        changes.audit.append(result.audit)
        changes.history += result.history
    return changes


def _take_other(changes: Changes, event: Event, payout_views: dict[str, PayoutView],
                invoices: Collection[str], bank_fees: Collection[str]) -> bool:
    """Take an event that is not a job's (see `fold`); False for any other."""
    if is_keyed(event):
        changes.keep(event)
    elif is_invoice(event):
        _take_invoice(changes, event, invoices)
    elif is_bank_fee(event):
        _take_bank_fee(changes, event, bank_fees)
    elif is_payout(event):
        payout_id = payout_of(event)
        view = payout_views.get(payout_id)
        if view is not None and event.position <= view.position:
            changes.duplicates += 1
            return True
        payout_views[payout_id] = changes.payouts[payout_id] = evolve_payout(view, event)
        changes.entries += entries(event)
        changes.audit.append(audit_row(event))
    else:
        return False
    return True


def _take_invoice(changes: Changes, event: Event, stored: Collection[str]) -> None:
    """An issued invoice: its row, entries and audit row, unless it is a repeat."""
    number = number_of(event)
    if number in stored or number in changes.invoices:
        changes.duplicates += 1
        return
    changes.invoices[number] = invoice_row(event)
    changes.entries += entries(event)
    changes.audit.append(audit_row(event))


def _take_bank_fee(changes: Changes, event: Event, stored: Collection[str]) -> None:
    """A booked bank charge: its row, decision, entries and audit row, unless a repeat."""
    line_id = fee_line_of(event)
    if line_id in stored or line_id in changes.bank_fees:
        changes.duplicates += 1
        return
    changes.bank_fees[line_id] = bank_fee_row(event)
    _latest(changes.statement_decisions, line_id, bank_fee_decision(event))
    changes.entries += entries(event)
    changes.audit.append(audit_row(event))
