"""The 総合振込 file (SPEC §11), byte for byte. The golden file below is typed
out field by field from §11's table; nothing in it comes from the writer."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.banking.accounts import parse_bank_account
from settlement.banking.kana import NameNotRepresentable
from settlement.banking.transfers import Requester, Transfer
from settlement.banking.zengin import ZenginError, file_sha256, transfer_to, write_zengin
from settlement.core.errors import InvalidInput

REQUESTER = Requester(
    code="1234567890", name_kana="ｶ)ｸﾗｳﾄﾞﾜ-ｸｽ",
    bank_code="0005", bank_name_kana="ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ",
    branch_code="001", branch_name_kana="ﾎﾝﾃﾝ",
    account_type="current", account_number="0012345",
)
TRANSFERS = [
    Transfer(bank_code="0009", bank_name_kana="ﾐﾂｲｽﾐﾄﾓ", branch_code="123",
             branch_name_kana="ｼﾌﾞﾔ", account_type="ordinary", account_number="7654321",
             holder_name="ﾔﾏﾀﾞ ﾀﾛｳ", amount_yen=48_500, customer_code1="1001"),
    Transfer(bank_code="0001", branch_code="002", account_type="savings",
             account_number="0000001", holder_name="ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎ",
             amount_yen=9_999_999_999, customer_code2="42"),
    Transfer(bank_code="0036", bank_name_kana="ﾗｸﾃﾝ", branch_code="251",
             branch_name_kana="ｼﾞﾔｽﾞ", account_type="current", account_number="1111111",
             holder_name="SMITH J. (US)", amount_yen=1),
]
PAYMENT_DAY = date(2026, 5, 29)

HEADER = (
    "1" + "21" + "0" + "1234567890"
    + "ｶ)ｸﾗｳﾄﾞﾜ-ｸｽ" + " " * 29         # 依頼人名: 11 + 29 = 40
    + "0529"
    + "0005" + "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ" + " " * 2  # 仕向銀行名: 13 + 2 = 15
    + "001" + "ﾎﾝﾃﾝ" + " " * 11          # 仕向支店名: 4 + 11 = 15
    + "2" + "0012345" + " " * 17
)
DATA_1 = (
    "2" + "0009" + "ﾐﾂｲｽﾐﾄﾓ" + " " * 8    # 7 + 8 = 15
    + "123" + "ｼﾌﾞﾔ" + " " * 11           # 4 + 11 = 15
    + "0000" + "1" + "7654321"
    + "ﾔﾏﾀﾞ ﾀﾛｳ" + " " * 22              # 受取人名: 8 + 22 = 30
    + "0000048500" + "0" + "0000001001" + "0000000000" + "7" + " " + " " * 7
)
DATA_2 = (
    "2" + "0001" + " " * 15 + "002" + " " * 15
    + "0000" + "4" + "0000001"
    + "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎ"      # exactly 30
    + "9999999999" + "0" + "0000000000" + "0000000042" + "7" + " " + " " * 7
)
DATA_3 = (
    "2" + "0036" + "ﾗｸﾃﾝ" + " " * 11 + "251" + "ｼﾞﾔｽﾞ" + " " * 10
    + "0000" + "2" + "1111111"
    + "SMITH J. (US)" + " " * 17         # 13 + 17 = 30
    + "0000000001" + "0" + "0000000000" + "0000000000" + "7" + " " + " " * 7
)
TRAILER = "8" + "000003" + "010000048500" + " " * 101  # 48,500 + 9,999,999,999 + 1
END = "9" + " " * 119


def test_the_golden_file() -> None:
    records = [HEADER, DATA_1, DATA_2, DATA_3, TRAILER, END]
    assert [len(record.encode("shift_jis")) for record in records] == [120] * 6
    expected = b"".join(record.encode("shift_jis") + b"\r\n" for record in records)
    written = write_zengin(REQUESTER, PAYMENT_DAY, TRANSFERS)
    assert written == expected
    assert file_sha256(written) == hashlib.sha256(expected).hexdigest()
    assert len(file_sha256(written)) == 64


def test_a_transfer_to_a_parties_account() -> None:
    account = parse_bank_account({
        "bank_code": "0009", "branch_code": "123", "account_type": "ordinary",
        "account_number": "7654321", "holder_kana": "やまだ　たろう",
        "bank_name_kana": "ミツイスミトモ", "branch_name_kana": "シブヤ",
    })
    assert transfer_to(account, 48_500, customer_code1="1001") == TRANSFERS[0]
    unrepresentable = dataclasses.replace(account, holder_kana="山田太郎")
    with pytest.raises(NameNotRepresentable):
        transfer_to(unrepresentable, 48_500)


def requester(**changes: Any) -> Requester:
    return dataclasses.replace(REQUESTER, **changes)


def transfer(**changes: Any) -> Transfer:
    return dataclasses.replace(TRANSFERS[0], **changes)


# (requester, transfers) → the code of the refusal.
REFUSED: list[tuple[Requester, list[Transfer], str]] = [
    (REQUESTER, [], "zengin_transfer_count"),
    (requester(code="12345678901"), TRANSFERS, "zengin_field_format"),
    (requester(code="12-4"), TRANSFERS, "zengin_field_format"),
    (requester(name_kana=" "), TRANSFERS, "zengin_field_missing"),
    (requester(name_kana="ｸﾗｳﾄﾞﾜｰｸｽ"), TRANSFERS, "zengin_field_not_representable"),
    (requester(name_kana="ｱ" * 41), TRANSFERS, "zengin_field_too_long"),
    (requester(bank_code="005"), TRANSFERS, "zengin_field_format"),
    (requester(bank_name_kana="ｱ" * 16), TRANSFERS, "zengin_field_too_long"),
    (requester(branch_code="1"), TRANSFERS, "zengin_field_format"),
    (requester(account_type="checking"), TRANSFERS, "zengin_field_format"),
    (requester(account_number="123456"), TRANSFERS, "zengin_field_format"),
    (REQUESTER, [transfer(bank_code="00091")], "zengin_field_format"),
    (REQUESTER, [transfer(bank_code="０００９")], "zengin_field_format"),
    (REQUESTER, [transfer(bank_name_kana="三井住友")], "zengin_field_not_representable"),
    (REQUESTER, [transfer(branch_name_kana="ｱ" * 16)], "zengin_field_too_long"),
    (REQUESTER, [transfer(account_number="765432")], "zengin_field_format"),
    (REQUESTER, [transfer(holder_name="")], "zengin_field_missing"),
    (REQUESTER, [transfer(holder_name="ﾔﾏﾀﾞ ﾀﾛｳ" + "ｱ" * 23)], "zengin_field_too_long"),
    (REQUESTER, [transfer(holder_name="ヤマダ")], "zengin_field_not_representable"),
    (REQUESTER, [transfer(holder_name="yamada")], "zengin_field_not_representable"),
    (REQUESTER, [transfer(amount_yen=0)], "transfer_amount_not_positive"),
    (REQUESTER, [transfer(amount_yen=-1)], "transfer_amount_not_positive"),
    (REQUESTER, [transfer(amount_yen=True)], "transfer_amount_not_positive"),
    (REQUESTER, [transfer(amount_yen=100.0)], "transfer_amount_not_positive"),
    (REQUESTER, [transfer(amount_yen=10_000_000_000)], "transfer_amount_too_large"),
    (REQUESTER, [transfer(customer_code1="12345678901")], "zengin_field_format"),
    (REQUESTER, [transfer(customer_code2="A1")], "zengin_field_format"),
    (REQUESTER, [transfer(customer_code2="")], "zengin_field_format"),  # absent is None
    (REQUESTER, [transfer(amount_yen=9_999_999_999)] * 101, "zengin_total_too_large"),
    # The requester is checked before the transfers, and transfers in order.
    (requester(code="x"), [transfer(amount_yen=0)], "zengin_field_format"),
    (REQUESTER, [transfer(holder_name=""), transfer(amount_yen=0)], "zengin_field_missing"),
]


@pytest.mark.parametrize(("sender", "transfers", "code"), REFUSED)
def test_refusals(sender: Requester, transfers: list[Transfer], code: str) -> None:
    with pytest.raises(ZenginError) as refused:
        write_zengin(sender, PAYMENT_DAY, transfers)
    assert refused.value.code == code
    assert isinstance(refused.value, InvalidInput)


def test_the_largest_total_fits() -> None:
    # 100 × 9,999,999,999 = 999,999,999,900: twelve digits.
    written = write_zengin(REQUESTER, PAYMENT_DAY, [transfer(amount_yen=9_999_999_999)] * 100)
    assert written.split(b"\r\n")[-3] == b"8" + b"000100" + b"999999999900" + b" " * 101


def test_more_transfers_than_six_digits_count() -> None:
    with pytest.raises(ZenginError) as refused:
        write_zengin(REQUESTER, PAYMENT_DAY, [TRANSFERS[2]] * 1_000_000)
    assert refused.value.code == "zengin_transfer_count"


def test_messages_name_the_field_not_the_value() -> None:
    with pytest.raises(ZenginError) as refused:
        write_zengin(REQUESTER, PAYMENT_DAY, [TRANSFERS[0], transfer(account_number="76543")])
    assert "transfer 2" in str(refused.value) and "76543" not in str(refused.value)


zengin_text = "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝﾞﾟABCXYZ0189 ().-/"


def digits(size: int, exact: bool = True) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=size if exact else 1, max_size=size)


def names(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=zengin_text, max_size=size)


transfers = st.builds(
    Transfer,
    bank_code=digits(4), branch_code=digits(3),
    account_type=st.sampled_from(["ordinary", "current", "savings"]),
    account_number=digits(7),
    holder_name=names(30).filter(lambda name: name.strip(" ") != ""),
    amount_yen=st.integers(1, 9_999_999_999),
    bank_name_kana=names(15), branch_name_kana=names(15),
    customer_code1=st.none() | digits(10, exact=False),
    customer_code2=st.none() | digits(10, exact=False),
)


@given(st.lists(transfers, min_size=1, max_size=30), st.dates(date(2000, 1, 1)))
def test_every_file_is_well_formed(batch: list[Transfer], day: date) -> None:
    written = write_zengin(REQUESTER, day, batch)
    assert written.endswith(b"\r\n")
    records = written[:-2].split(b"\r\n")
    assert [len(record) for record in records] == [120] * (len(batch) + 3)
    assert [record[:1] for record in records] == [b"1"] + [b"2"] * len(batch) + [b"8", b"9"]
    assert records[0][54:58] == day.strftime("%m%d").encode()
    data, trailer = records[1:-2], records[-2]
    assert int(trailer[1:7]) == len(batch)
    assert int(trailer[7:19]) == sum(item.amount_yen for item in batch)
    for record, item in zip(data, batch, strict=True):
        assert int(record[80:90]) == item.amount_yen
        assert record[43:50].decode("ascii") == item.account_number
        assert record[50:80].decode("shift_jis").rstrip(" ") == item.holder_name.rstrip(" ")
    written.decode("shift_jis")
