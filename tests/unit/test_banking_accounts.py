"""A party's bank account (SPEC §10): form checks in a documented order, masking,
and the Zengin names a payout needs."""

from __future__ import annotations

from typing import Any

import pytest

from settlement.banking.accounts import (
    ACCOUNT_TYPE_CODES,
    BankAccount,
    InvalidBankAccount,
    parse_bank_account,
)
from settlement.banking.kana import NameNotRepresentable
from settlement.core.errors import InvalidInput

VALID: dict[str, Any] = {
    "bank_code": "0005",
    "branch_code": "001",
    "account_type": "ordinary",
    "account_number": "1234567",
    "holder_kana": "ヤマダ　タロウ",
}


def with_(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


def without(field: str) -> dict[str, Any]:
    return {key: value for key, value in VALID.items() if key != field}


def test_a_valid_account() -> None:
    account = parse_bank_account(with_(bank_name_kana="ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ", branch_name_kana="ﾄｳｷﾖｳ"))
    assert account == BankAccount(
        bank_code="0005", branch_code="001", account_type="ordinary",
        account_number="1234567", holder_kana="ヤマダ　タロウ",
        bank_name_kana="ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ", branch_name_kana="ﾄｳｷﾖｳ",
    )
    assert account.masked() == "****567"
    assert account.zengin_holder_name() == "ﾔﾏﾀﾞ ﾀﾛｳ"
    assert account.zengin_bank_names() == ("ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ", "ﾄｳｷﾖｳ")


def test_optional_names_may_be_absent_or_null_and_are_converted() -> None:
    assert parse_bank_account(VALID).zengin_bank_names() == ("", "")
    nulls = parse_bank_account(with_(bank_name_kana=None, branch_name_kana=None))
    assert nulls.bank_name_kana is None and nulls.zengin_bank_names() == ("", "")
    full_width = parse_bank_account(with_(bank_name_kana="ミズホ", branch_name_kana="ほんてん"))
    assert full_width.bank_name_kana == "ミズホ"  # kept as given
    assert full_width.zengin_bank_names() == ("ﾐｽﾞﾎ", "ﾎﾝﾃﾝ")
    long_name = parse_bank_account(with_(bank_name_kana="ｱ" * 20))
    assert long_name.zengin_bank_names() == ("ｱ" * 15, "")


def test_account_type_codes() -> None:
    assert ACCOUNT_TYPE_CODES == {"ordinary": "1", "current": "2", "savings": "4"}
    for account_type in ("ordinary", "current", "savings"):
        assert parse_bank_account(with_(account_type=account_type)).account_type == account_type


def test_a_holder_name_with_no_zengin_form_is_accepted_and_held_at_payout() -> None:
    # SPEC §11 holds such a payout (name_not_representable); the account itself stands.
    account = parse_bank_account(with_(holder_kana="山田太郎"))
    with pytest.raises(NameNotRepresentable) as refused:
        account.zengin_holder_name()
    assert refused.value.code == "name_not_representable"


# Input → the code of its refusal; where several fields are wrong, the first
# check in the documented order decides.
REFUSED: list[tuple[Any, str]] = [
    ("not an object", "bank_account_format"),
    (None, "bank_account_format"),
    (["0005"], "bank_account_format"),
    (with_(swift="ABCDJPJT"), "bank_account_format"),
    (with_(swift="x", bank_code="5"), "bank_account_format"),
    (without("bank_code"), "bank_code_format"),
    (with_(bank_code="005"), "bank_code_format"),
    (with_(bank_code="00051"), "bank_code_format"),
    (with_(bank_code=5), "bank_code_format"),
    (with_(bank_code="０００５"), "bank_code_format"),
    (with_(bank_code="0005\n"), "bank_code_format"),
    (with_(bank_code="5", branch_code="1"), "bank_code_format"),
    (without("branch_code"), "branch_code_format"),
    (with_(branch_code="01"), "branch_code_format"),
    (with_(branch_code="0001"), "branch_code_format"),
    (with_(branch_code="１２３"), "branch_code_format"),
    (with_(branch_code="1", account_type="checking"), "branch_code_format"),
    (without("account_type"), "account_type_unknown"),
    (with_(account_type="checking"), "account_type_unknown"),
    (with_(account_type="Ordinary"), "account_type_unknown"),
    (with_(account_type=1), "account_type_unknown"),
    (with_(account_type="1"), "account_type_unknown"),
    (with_(account_type=["ordinary"]), "account_type_unknown"),
    (with_(account_type="x", account_number="1"), "account_type_unknown"),
    (without("account_number"), "account_number_format"),
    (with_(account_number="123456"), "account_number_format"),
    (with_(account_number="12345678"), "account_number_format"),
    (with_(account_number=1234567), "account_number_format"),
    (with_(account_number="123-456"), "account_number_format"),
    (with_(account_number="1", holder_kana=""), "account_number_format"),
    (without("holder_kana"), "holder_kana_format"),
    (with_(holder_kana=""), "holder_kana_format"),
    (with_(holder_kana="　 "), "holder_kana_format"),
    (with_(holder_kana="ｱ" * 101), "holder_kana_format"),
    (with_(holder_kana=None), "holder_kana_format"),
    (with_(holder_kana="", bank_name_kana="銀行"), "holder_kana_format"),
    (with_(bank_name_kana="三菱UFJ銀行"), "bank_name_kana_format"),
    (with_(branch_name_kana="本店"), "bank_name_kana_format"),
    (with_(bank_name_kana=5), "bank_name_kana_format"),
    (with_(bank_name_kana=""), "bank_name_kana_format"),
    (with_(branch_name_kana="ｱ" * 101), "bank_name_kana_format"),
]


@pytest.mark.parametrize(("data", "code"), REFUSED)
def test_refusals(data: Any, code: str) -> None:
    with pytest.raises(InvalidBankAccount) as refused:
        parse_bank_account(data)
    assert refused.value.code == code
    assert isinstance(refused.value, InvalidInput)


def test_the_longest_holder_name_is_accepted() -> None:
    assert parse_bank_account(with_(holder_kana="ｱ" * 100)).zengin_holder_name() == "ｱ" * 30


def test_errors_and_repr_do_not_show_the_whole_number_or_the_name() -> None:
    account = parse_bank_account(VALID)
    assert "1234567" not in repr(account) and "ヤマダ" not in repr(account)
    assert "****567" in repr(account)
    with pytest.raises(InvalidBankAccount) as refused:
        parse_bank_account(with_(account_number="12345678"))
    assert "12345678" not in str(refused.value)


def test_the_account_is_immutable() -> None:
    account = parse_bank_account(VALID)
    with pytest.raises(AttributeError):
        account.account_number = "7654321"  # type: ignore[misc]
