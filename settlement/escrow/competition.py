"""Competition commands: prize funded in full, entries, awards, cancellation.

Order of checks: format, escrow state (`competition_not_funded`,
`already_awarded`, `job_closed`), disputes (`item_disputed`), entries and
deadlines, then amounts (`currency_mismatch`, `award_sum_mismatch`; at opening
a prize below the plan's floor: `amount_below_minimum`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Self

from settlement.core.errors import Rejected
from settlement.core.fees import FeePlan
from settlement.core.money import Money, zero
from settlement.core.movements import Release
from settlement.escrow import events as ev
from settlement.escrow import items as it
from settlement.escrow.base import EscrowBase

AWARDS_MAX = 1_000


class CompetitionCommands(EscrowBase):
    @classmethod
    def open_competition(cls, *, job_id: str, client_id: str, plan: FeePlan, prize: Money,
                         tax: Money, guaranteed: bool, entry_deadline: datetime,
                         award_deadline: datetime, min_entries: int, withholding: bool,
                         terms: dict[str, Any] | None, causation_id: str, at: datetime) -> Self:
        plan.require_currency(prize)
        plan.require_currency(tax)
        if tax.amount > prize.amount:
            raise Rejected("tax cannot exceed the prize", "tax_exceeds_amount")
        # The floor applies to the prize offered; awards only divide it (docs/domain.md).
        plan.require_minimum(prize, "prize")
        if award_deadline < entry_deadline:
            raise Rejected("award_deadline is before entry_deadline", "invalid_deadlines")
        return cls.open(
            ev.CompetitionOpened, job_id=job_id, client_id=client_id, plan=plan, prize=prize,
            tax=tax, guaranteed=guaranteed, entry_deadline=entry_deadline,
            award_deadline=award_deadline, min_entries=min_entries, withholding=withholding,
            terms=terms, causation_id=causation_id, at=at,
        )

    def fund_competition(self, amount: Money, payment_ref: str, *,
                         causation_id: str, at: datetime) -> None:
        self._require_format("competition")
        self._require_competition_state("opened", code="competition_already_funded")
        funding = self._funding("prize", self.prize, amount, payment_ref)
        self._emit(ev.CompetitionFunded, causation_id=causation_id, at=at, funding=funding)

    def submit_entry(self, entry_id: str, worker_id: str, *,
                     causation_id: str, at: datetime) -> None:
        """Entries count only once the prize is deposited and before `entry_deadline`."""
        self._require_format("competition")
        self._require_competition_state("funded", code="competition_not_funded")
        self._new_item_id(entry_id)
        if at > self.entry_deadline:
            raise Rejected(f"entries closed at {self.entry_deadline.isoformat()}",
                           "entry_deadline_passed")
        self._emit(ev.EntrySubmitted, causation_id=causation_id, at=at,
                   entry_id=entry_id, worker_id=worker_id)

    def award(self, awards: list[tuple[str, Money]], *, causation_id: str, at: datetime,
              automatic: bool = False) -> None:
        self._require_format("competition")
        self._require_competition_state("funded", code="competition_not_funded")
        if not 1 <= len(awards) <= AWARDS_MAX:
            raise Rejected(f"1 to {AWARDS_MAX} awards", "too_many_items")
        if len({entry_id for entry_id, _ in awards}) != len(awards):
            raise Rejected("an entry is awarded twice", "duplicate_item")
        entries = [self._item(entry_id, it.ENTRY) for entry_id, _ in awards]
        for _, amount in awards:
            self._require_currency(amount)
        total = sum((amount for _, amount in awards), zero(self.currency))
        if total != self.prize:
            raise Rejected(f"awards sum to {total.amount}, the prize is {self.prize.amount}",
                           "award_sum_mismatch")
        self._emit(ev.CompetitionAwarded, causation_id=causation_id, at=at,
                   releases=self._award_releases(entries, [a for _, a in awards]),
                   automatic=automatic)

    def _award_releases(self, entries: list[it.Item], amounts: list[Money]) -> list[Release]:
        """Releases in order, each worker's fee tiers running on their earlier awards;
        the withholding base takes its share of the prize's included tax."""
        running: dict[str, Money] = {}
        releases = []
        for entry, amount in zip(entries, amounts, strict=True):
            worker = str(entry.worker_id)
            before = running.get(worker, self.released_to_worker(worker))
            release = self._release(self._prize_item(), worker, amount, cumulative=before)
            releases.append(replace(release, item_id=entry.item_id))
            running[worker] = before + amount
        return releases

    def cancel_competition(self, reason: str, *, causation_id: str, at: datetime) -> None:
        """Only a non-guaranteed competition without awards may be cancelled (full refund)."""
        self._require_format("competition")
        if self.guaranteed:
            raise Rejected("a guaranteed competition cannot be cancelled", "competition_guaranteed")
        self._require_competition_state("opened", "funded", code="already_awarded")
        refund = self._refund("prize", self.held)
        self._emit(ev.CompetitionCancelled, causation_id=causation_id, at=at,
                   reason=reason, refund=refund)

    def _require_competition_state(self, *states: str, code: str) -> None:
        if self.disputes:
            raise Rejected(f"competition {self.job_id} is disputed", "item_disputed")
        if self.state not in states:
            closed = self.state in ("refunded", "cancelled", "resolved")
            # An awarded prize is funded: say so, not `competition_not_funded`.
            awarded = "already_awarded" if self.state == "awarded" else code
            raise Rejected(f"competition {self.job_id} is {self.state}",
                           "job_closed" if closed else awarded)
