"""An application on an in-memory event store for unit tests of payouts: marketplace
events (jobs and parties) applied as the service applies them, and payout results."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from settlement.application import handlers
from settlement.application.parties import apply_party_command
from settlement.core.commands import Command
from settlement.core.fees import DEFAULT_FEE_PLANS, FeePlan, load_fee_plans
from settlement.escrow import Escrow
from settlement.ledger.balances import trial_balances
from settlement.ledger.posting import Posting
from settlement.parties import PARTY_TYPES
from settlement.payouts import PartyPayouts, apply_payout_result
from settlement.payouts.policy import parse_policy
from settlement.store import transcodings

USD_PLAN = FeePlan.from_dict("usd", {"currency": "USD", "worker_tiers": [{"rate": "0.10"}],
                                     "worker_fee_tax_included": False,
                                     "consumption_tax_rate": "0.10"})


# The payout policy of the tests, spelled out here: not the sample file's.
POLICY = parse_policy({
    "minimums": {"JPY": "1000"},
    "requester": {"code": "1234567890", "name_kana": "セツトルメント デモ(カ",
                  "bank_code": "0001", "bank_name_kana": "ﾃﾞﾓｷﾞﾝｺｳ", "branch_code": "001",
                  "branch_name_kana": "ﾎﾝﾃﾝ", "account_type": "ordinary",
                  "account_number": "1234567"},
    "transfer_fees": {"currency": "JPY", "consumption_tax_rate": "0.10",
                      "same_bank": [{"below": "30000", "fee": "110"}, {"fee": "330"}],
                      "other_bank": [{"below": "30000", "fee": "440"}, {"fee": "660"}]},
})


class MemoryApp(Application[UUID]):
    env = {"TRANSCODER_TOPIC": get_topic(transcodings.OrjsonTranscoder)}

    def __init__(self) -> None:
        super().__init__()
        self.plans = {**load_fee_plans(DEFAULT_FEE_PLANS), "usd": USD_PLAN}
        self.escrows: dict[str, Escrow] = {}

    def register_transcodings(self, transcoder: Any) -> None:
        super().register_transcodings(transcoder)
        transcodings.register(transcoder)

    def apply(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            cmd = Command.create(e["id"], e["type"], datetime.fromisoformat(e["time"]), e["data"])
            if cmd.type in PARTY_TYPES:
                self.save(apply_party_command(self, cmd, {}))
                continue
            escrow = handlers.apply(self.escrows.get(cmd.job_id), cmd, self.plans)
            self.escrows[cmd.job_id] = escrow
            self.save(escrow)

    def result(self, type_: str, command_id: str, at: datetime, **data: str) -> PartyPayouts:
        party = apply_payout_result(self.repository, Command.create(command_id, type_, at, data))
        self.save(party)
        return party

    def stored(self) -> list[Any]:
        return [self.mapper.to_domain_event(n)
                for n in self.recorder.select_notifications(start=1, limit=1_000_000)]

    def postings(self) -> Iterator[Posting]:
        for event in self.stored():
            yield from getattr(event, "postings", ())

    def balances(self, currency: str = "JPY") -> dict[str, Any]:
        ledger = trial_balances(self.postings())[currency]
        assert ledger.balanced
        return {a.account: a.balance for a in ledger.accounts}
