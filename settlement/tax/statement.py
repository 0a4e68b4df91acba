"""The payment statement (支払明細, SPEC §12) of one payout: each item's gross,
fee, fee tax, withholding and net, the transfer fee, the amount sent and the
bank account, masked (`****567`).

Built from what the events recorded: the payout's `payout_initiated` data
(items, amount, transfer fee, the bank account of the run's snapshot) and the
releases that made each item payable. Its PDF shows only what never changes
after the payout was made (not its status), so a re-render is the same bytes.
Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from settlement.banking.calendar import jst_date
from settlement.documents.pdf import Document
from settlement.tax.withholding import Release

ZERO = Decimal(0)
AMOUNTS = ("gross", "fee", "fee_tax", "withholding", "net")
LINE_COLUMNS = ("line", "job_id", "item_id", *AMOUNTS)


@dataclass(frozen=True)
class StatementItem:
    job_id: str
    item_id: str
    gross: Decimal
    fee: Decimal
    fee_tax: Decimal
    withholding: Decimal
    net: Decimal


@dataclass(frozen=True)
class Statement:
    payout_id: str
    party_type: str
    party_id: str
    currency: str
    initiated_at: datetime
    amount: Decimal  # paid out of the party's account
    transfer_fee: Decimal  # payee-borne, tax-included (0 when the platform bears it)
    transfer_fee_tax: Decimal
    bank_account: Mapping[str, Any] | None  # the number masked
    items: tuple[StatementItem, ...]

    @property
    def sent(self) -> Decimal:
        """What the bank transfers: the amount less a payee-borne transfer fee."""
        return self.amount - self.transfer_fee

    def total(self, name: str) -> Decimal:
        return sum((getattr(item, name) for item in self.items), ZERO)


def mask(number: str) -> str:
    """`****567`, whether the number is whole or masked already."""
    return "****" + number[-3:]


def masked_account(account: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not account:
        return None
    shown = dict(account)
    shown["account_number"] = mask(str(account.get("account_number") or ""))
    return shown


def _money(data: Mapping[str, Any], name: str) -> Decimal:
    value = data.get(name)
    return ZERO if value is None else Decimal(value["amount"])


def statement(initiated: Mapping[str, Any], at: datetime,
              releases: Mapping[tuple[str, str], Release]) -> Statement:
    """The statement of the payout whose `payout_initiated` data is `initiated`
    (its event at `at`); `releases`: by (job_id, item_id), the releases of its
    items. A client's payout pays refunds (a disputed item may have been both
    released and refunded): each item is its amount, all net."""
    items = []
    worker = initiated["party_id"] if initiated["party_type"] == "worker" else None
    for item in initiated.get("items") or ():
        key = (item["job_id"], item["item_id"])
        release = releases.get(key)
        if release is None or release.worker_id != worker:
            paid = Decimal(item["amount"])
            items.append(StatementItem(*key, paid, ZERO, ZERO, ZERO, paid))
        else:
            items.append(StatementItem(*key, release.gross, release.fee, release.fee_tax,
                                       release.withholding, release.net))
    money = initiated["amount"]
    return Statement(initiated["payout_id"], initiated["party_type"], initiated["party_id"],
                     money["currency"], at, Decimal(money["amount"]),
                     _money(initiated, "transfer_fee"), _money(initiated, "transfer_fee_tax"),
                     masked_account(initiated.get("bank_account")), tuple(items))


def _text(value: Decimal) -> str:
    return format(value if value != 0 else abs(value), "f")


def to_json(s: Statement, status: str) -> dict[str, Any]:
    return {
        "payout_id": s.payout_id, "party_type": s.party_type, "party_id": s.party_id,
        "currency": s.currency, "status": status, "initiated_at": s.initiated_at.isoformat(),
        "payment_date": jst_date(s.initiated_at).isoformat(),
        "items": [{"job_id": i.job_id, "item_id": i.item_id,
                   **{name: _text(getattr(i, name)) for name in AMOUNTS}} for i in s.items],
        "totals": {name: _text(s.total(name)) for name in AMOUNTS},
        "amount": _text(s.amount), "transfer_fee": _text(s.transfer_fee),
        "transfer_fee_tax": _text(s.transfer_fee_tax), "sent": _text(s.sent),
        "bank_account": s.bank_account,
    }


def csv_lines(s: Statement) -> list[dict[str, str]]:
    """CSV rows (`LINE_COLUMNS`): one `item` line each, the `total` of the items,
    the `transfer_fee` (in `net`, deducted) and the amount `sent` (in `net`)."""
    lines = [{"line": "item", "job_id": i.job_id, "item_id": i.item_id,
              **{name: _text(getattr(i, name)) for name in AMOUNTS}} for i in s.items]
    lines.append({"line": "total", "job_id": "", "item_id": "",
                  **{name: _text(s.total(name)) for name in AMOUNTS}})
    for line, value in (("transfer_fee", -s.transfer_fee), ("sent", s.sent)):
        lines.append({"line": line, "job_id": "", "item_id": "",
                      **{name: "" for name in AMOUNTS[:-1]}, "net": _text(value)})
    return lines


_KIND = {"worker": "報酬 (worker)", "client": "返金 (client refund)"}
_ACCOUNT_TYPES = {"ordinary": "普通", "current": "当座", "savings": "貯蓄"}


def _account_line(account: Mapping[str, Any] | None) -> str:
    if not account:
        return "—"
    kind = _ACCOUNT_TYPES.get(str(account.get("account_type")), "")
    return (f"{account.get('bank_code')}-{account.get('branch_code')} {kind} "
            f"{account.get('account_number')} {account.get('holder_kana') or ''}").strip()


def document(s: Statement) -> Document:
    """The PDF's content: what the payout paid, never its later status."""
    def yen(value: Decimal) -> str:
        return f"{_text(value)} {s.currency}"

    rows: Sequence[Sequence[str]] = [
        (i.job_id, i.item_id, *(_text(getattr(i, name)) for name in AMOUNTS)) for i in s.items]
    return Document(
        title="支払明細書 Payment statement",
        parties=[("支払番号 Payout", s.payout_id),
                 ("支払先 Payee", f"{s.party_id} ({_KIND.get(s.party_type, s.party_type)})"),
                 ("支払日 Date (JST)", jst_date(s.initiated_at).isoformat()),
                 ("振込先口座 Bank account", _account_line(s.bank_account)),
                 ("通貨 Currency", s.currency)],
        columns=["案件 Job", "項目 Item", "報酬額(税込) Gross", "手数料 Fee",
                 "手数料消費税 Fee tax", "源泉徴収税額 Withholding", "差引額 Net"],
        rows=rows,
        totals=[("報酬額合計 Gross total", yen(s.total("gross"))),
                ("手数料合計 Fees", yen(s.total("fee") + s.total("fee_tax"))),
                ("源泉徴収税額 Withholding", yen(s.total("withholding"))),
                ("支払額 Paid out", yen(s.amount)),
                ("振込手数料 Transfer fee", yen(s.transfer_fee)),
                ("振込金額 Amount sent", yen(s.sent))],
        notes=["金額は円単位、切り捨て (amounts exact, rounded down per SPEC §5).",
               "口座番号は下3桁のみ表示 (account number masked)."],
        numeric_columns=frozenset(range(2, 7)))
