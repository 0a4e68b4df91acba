"""A sample marketplace day as CloudEvents (SPEC §3): one project, one competition,
one task and a dispute, and the parties it names (SPEC §10). Used by the demo and
by tests as a known script."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def _jpy(amount: int) -> dict[str, str]:
    return {"amount": str(amount), "currency": "JPY"}


def cloud_event(event_id: str, type_: str, time: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0", "id": event_id, "source": "marketplace/jobs", "type": type_,
        "subject": data.get("job_id", data.get("payout_id", data.get("party_id"))),
        "time": time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json", "data": data,
    }


def marketplace_day(start: datetime, prefix: str = "demo") -> list[dict[str, Any]]:
    """Events of one day, in order, every id unique under `prefix`."""
    p, c, t = f"{prefix}-project", f"{prefix}-contest", f"{prefix}-task"
    rows: list[tuple[str, dict[str, Any]]] = [
        ("project.contracted", {"job_id": p, "client_id": "client-a", "worker_id": "worker-1",
                                "fee_plan": "tiered", "withholding": True,
                                "milestones": [{"milestone_id": "m1", "amount": _jpy(110000),
                                                "tax": _jpy(10000)},
                                               {"milestone_id": "m2", "amount": _jpy(55000)}],
                                "terms": {"scope": "logo and brand guide", "rights": "assigned"}}),
        ("project.milestone_funded", {"job_id": p, "milestone_id": "m1", "amount": _jpy(110000),
                                      "payment_ref": "pay-1"}),
        ("project.milestone_funded", {"job_id": p, "milestone_id": "m2", "amount": _jpy(55000),
                                      "payment_ref": "pay-2"}),
        ("project.milestone_delivered", {"job_id": p, "milestone_id": "m1"}),
        ("project.revision_requested", {"job_id": p, "milestone_id": "m1", "reason": "colours"}),
        ("project.milestone_delivered", {"job_id": p, "milestone_id": "m1"}),
        ("project.milestone_accepted", {"job_id": p, "milestone_id": "m1"}),
        ("project.milestone_delivered", {"job_id": p, "milestone_id": "m2"}),
        ("dispute.opened", {"job_id": p, "item_id": "m2", "opened_by": "client",
                            "reason": "incomplete"}),
        ("dispute.resolved", {"job_id": p, "item_id": "m2", "worker_amount": _jpy(30000),
                              "client_amount": _jpy(25000)}),
        ("competition.opened", {"job_id": c, "client_id": "client-b", "fee_plan": "flat",
                                 "prize": _jpy(50000), "guaranteed": True,
                                 "entry_deadline": (start + timedelta(days=7)).isoformat(),
                                 "award_deadline": (start + timedelta(days=14)).isoformat()}),
        ("competition.funded", {"job_id": c, "amount": _jpy(52750), "payment_ref": "pay-3"}),
        ("competition.entry_submitted", {"job_id": c, "entry_id": "e1", "worker_id": "worker-2"}),
        ("competition.entry_submitted", {"job_id": c, "entry_id": "e2", "worker_id": "worker-3"}),
        ("competition.awarded", {"job_id": c, "awards": [
            {"entry_id": "e1", "amount": _jpy(40000)},
            {"entry_id": "e2", "amount": _jpy(10000)}]}),
        ("task.opened", {"job_id": t, "client_id": "client-a", "fee_plan": "flat",
                         "unit_price": _jpy(500), "quantity": 10}),
        ("task.funded", {"job_id": t, "amount": _jpy(5275), "payment_ref": "pay-4"}),
        ("task.submission_received", {"job_id": t, "submission_id": "s1", "worker_id": "worker-4"}),
        ("task.submission_received", {"job_id": t, "submission_id": "s2", "worker_id": "worker-5"}),
        ("task.submission_received", {"job_id": t, "submission_id": "s3", "worker_id": "worker-4"}),
        ("task.submission_approved", {"job_id": t, "submission_id": "s1"}),
        ("task.submission_rejected", {"job_id": t, "submission_id": "s2", "reason": "blurry"}),
        ("task.closed", {"job_id": t}),
        ("task.submission_approved", {"job_id": t, "submission_id": "s3"}),
    ]
    return [
        cloud_event(f"{prefix}-{n:04d}", type_, start + timedelta(minutes=n), data)
        for n, (type_, data) in enumerate(rows, start=1)
    ]


def bank_account(number: str, holder_kana: str, bank_code: str = "0005",
                 branch_code: str = "001") -> dict[str, str]:
    return {"bank_code": bank_code, "branch_code": branch_code, "account_type": "ordinary",
            "account_number": number, "holder_kana": holder_kana,
            "bank_name_kana": "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｪｲ", "branch_name_kana": "ﾎﾝﾃﾝ"}


# The parties of the sample day: every one verified, with an account in kana as
# a marketplace holds it (full-width, hiragana, small kana), except worker-5.
SAMPLE_PARTIES: list[dict[str, object]] = [
    {"party_id": "client-a", "kind": "corporation", "name": "株式会社エーシー",
     "name_kana": "カブシキガイシャエーシー", "invoice_registration_number": "T7000012050002",
     "bank_account": bank_account("1000001", "カ）エーシー"), "kyc_verified": True},
    {"party_id": "client-b", "kind": "corporation", "name": "合同会社ビー",
     "name_kana": "ゴウドウガイシャビー",
     "bank_account": bank_account("1000002", "ド）ビー", "0009"), "kyc_verified": True},
    {"party_id": "worker-1", "kind": "individual", "name": "山田 太郎",
     "name_kana": "ヤマダ タロウ", "address": "東京都千代田区丸の内1-1-1",
     "invoice_registration_number": "T1234567890123",
     "bank_account": bank_account("2000001", "ヤマダ タロウ", "0001"), "kyc_verified": True},
    {"party_id": "worker-2", "kind": "individual", "name": "佐藤 花子",
     "name_kana": "さとう はなこ",
     "bank_account": bank_account("2000002", "サトウ ハナコ", "0009", "123"),
     "kyc_verified": True},
    {"party_id": "worker-3", "kind": "individual", "name": "Jane Doe", "name_kana": "ジェーン ドウ",
     "bank_account": bank_account("2000003", "ｼﾞｪｰﾝ ﾄﾞｳ", "0033"), "kyc_verified": True},
    {"party_id": "worker-4", "kind": "individual", "name": "鈴木 一郎",
     "name_kana": "スズキ イチロウ",
     "bank_account": bank_account("2000004", "スズキ イチロウ"), "kyc_verified": True},
    {"party_id": "worker-5", "kind": "individual", "name": "高橋 次郎",
     "name_kana": "タカハシ ジロウ"},
]


def marketplace_parties(start: datetime, prefix: str = "demo") -> list[dict[str, object]]:
    """`party.registered` events of the sample day's parties, the day before it."""
    return [cloud_event(f"{prefix}-party-{n:02d}", "party.registered",
                        start - timedelta(days=1) + timedelta(minutes=n), dict(party))
            for n, party in enumerate(SAMPLE_PARTIES, start=1)]
