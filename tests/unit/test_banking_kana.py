"""Names in the Zengin character set (SPEC §11, 受取人名). Expected outputs are
written out by hand; the character set itself is spelled out here too."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.banking.kana import (
    HOLDER_NAME_BYTES_MAX,
    ZENGIN_CHARACTERS,
    ZENGIN_TABLE,
    NameNotRepresentable,
    to_zengin,
)
from settlement.core.errors import InvalidInput

# SPEC §11's set, typed out: ｱ–ﾝ, ﾞ, ﾟ, A–Z, 0–9, space and ().-/
ZENGIN_SET = set(
    "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝ" "ﾞﾟ"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ" "0123456789" " ().-/"
)

CONVERTED = [
    ("ヤマダ　タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
    ("やまだ たろう", "ﾔﾏﾀﾞ ﾀﾛｳ"),        # hiragana reads as katakana
    ("ガギグゲゴ", "ｶﾞｷﾞｸﾞｹﾞｺﾞ"),
    ("ザジズゼゾダヂヅデド", "ｻﾞｼﾞｽﾞｾﾞｿﾞﾀﾞﾁﾞﾂﾞﾃﾞﾄﾞ"),
    ("バビブベボ", "ﾊﾞﾋﾞﾌﾞﾍﾞﾎﾞ"),
    ("パピプペポ", "ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ"),
    ("ヴ", "ｳﾞ"),
    ("ゔ", "ｳﾞ"),
    ("キャッシュ", "ｷﾔﾂｼﾕ"),             # small kana become large
    ("ｷｬｯｼｭ", "ｷﾔﾂｼﾕ"),
    ("ァィゥェォ", "ｱｲｳｴｵ"),
    ("ｧｨｩｪｫ", "ｱｲｳｴｵ"),
    ("ヮヵヶ", "ﾜｶｹ"),
    ("ゎゕゖ", "ﾜｶｹ"),
    ("ヲ", "ｵ"),
    ("ｦ", "ｵ"),
    ("を", "ｵ"),
    ("ヰヱ", "ｲｴ"),
    ("コーヒー", "ｺ-ﾋ-"),                # the long-vowel mark becomes a hyphen
    ("ｺｰﾋｰ", "ｺ-ﾋ-"),
    ("ｶﾌﾞｼｷｶﾞｲｼﾔ", "ｶﾌﾞｼｷｶﾞｲｼﾔ"),      # already half-width: unchanged
    ("カ）ヤマダ", "ｶ)ﾔﾏﾀﾞ"),
    ("(ｶ)ﾔﾏﾀﾞ.ｼﾖｳﾃﾝ/ﾆｼ-1", "(ｶ)ﾔﾏﾀﾞ.ｼﾖｳﾃﾝ/ﾆｼ-1"),
    ("smith john", "SMITH JOHN"),
    ("Ｓｍｉｔｈ　Ｊｏｈｎ", "SMITH JOHN"),
    ("ＡＢＣ－１２３／（４）．", "ABC-123/(4)."),
    ("ABC‐123", "ABC-123"),              # U+2010, what Shift_JIS 0x815D decodes to
    ("ABC−123", "ABC-123"),              # U+2212, what Shift_JIS 0x817C decodes to
    ("カ\u3099", "ｶﾞ"),                  # decomposed, as macOS stores names
    ("ハ\u309a", "ﾊﾟ"),
    ("ウ\u3099", "ｳﾞ"),
    ("カ゛ハ゜", "ｶﾞﾊﾟ"),                # spacing voiced marks
    ("  ﾔﾏﾀﾞ  ", "ﾔﾏﾀﾞ"),                # spaces at either end are dropped
    ("ﾔﾏﾀﾞ  ﾀﾛｳ", "ﾔﾏﾀﾞ  ﾀﾛｳ"),          # inner spaces are kept
]


@pytest.mark.parametrize(("name", "expected"), CONVERTED)
def test_conversions(name: str, expected: str) -> None:
    assert to_zengin(name) == expected


NOT_REPRESENTABLE = [
    "山田",
    "ヤマダ太郎",
    "😀",
    "ヤマダ・タロウ",      # the middle dot has no Zengin form
    "ササヽ", "ささゝ",    # iteration marks would need the kana before them
    "ワ\u3099",            # composes to ヷ, which banks do not take
    "ア\u3099",            # no composed form: a stray combining mark
    "ﾞｱ",                  # a voiced mark must follow its kana
    "ｱﾞ", "ﾏﾟ", "ﾊﾞﾞ", "ﾝﾟ",
    "ｦﾞ",                  # ｦ becomes ｵ, which takes no mark
    "", " ", "　",
    "\t", "ｱ\nｲ",
    "é", "ß", "~", "¥", "&", ",", "'", "_", "@",
    "ｱ" * 40 + "漢",        # checked past the cut too
]


@pytest.mark.parametrize("name", NOT_REPRESENTABLE)
def test_names_with_no_zengin_form(name: str) -> None:
    with pytest.raises(NameNotRepresentable) as refused:
        to_zengin(name)
    assert refused.value.code == "name_not_representable"
    assert isinstance(refused.value, InvalidInput)


def test_the_message_does_not_quote_the_name() -> None:
    with pytest.raises(NameNotRepresentable) as refused:
        to_zengin("ヤマダ太郎")
    assert "太郎" not in str(refused.value) and "4" in str(refused.value)


CUT = [  # name, bytes_max, result
    ("ｱ" * 31, 30, "ｱ" * 30),
    ("ｱ" * 30, 30, "ｱ" * 30),
    ("ガ" * 16, 30, "ｶﾞ" * 15),               # 32 bytes
    ("ｱ" * 29 + "ガ", 30, "ｱ" * 29 + "ｶ"),      # a plain cut, as §11 says
    ("ｱ" * 29 + " ｲｲ", 30, "ｱ" * 29),          # a cut ending on a space drops it
    ("ミツビシユーエフジェイ", 15, "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ"),  # exactly 15
    ("ﾔﾏﾀﾞ ﾀﾛｳ", 5, "ﾔﾏﾀﾞ"),
]


@pytest.mark.parametrize(("name", "bytes_max", "expected"), CUT)
def test_long_names_are_cut(name: str, bytes_max: int, expected: str) -> None:
    assert to_zengin(name, bytes_max) == expected
    assert HOLDER_NAME_BYTES_MAX == 30


def test_the_output_alphabet_is_the_zengin_set() -> None:
    assert ZENGIN_CHARACTERS == ZENGIN_SET
    outputs = {character for target in ZENGIN_TABLE.values() for character in target}
    assert outputs == ZENGIN_SET


@pytest.mark.parametrize("character", sorted(ZENGIN_SET))
def test_every_output_character_is_one_shift_jis_byte(character: str) -> None:
    encoded = character.encode("shift_jis")
    assert len(encoded) == 1
    assert encoded.decode("shift_jis") == character
    # Half-width katakana and the marks are 0xB1–0xDF; the rest is ASCII.
    assert encoded[0] < 0x80 or 0xB1 <= encoded[0] <= 0xDF


def test_every_hiragana_reads_as_its_katakana() -> None:
    for code in range(ord("ぁ"), ord("ゖ") + 1):
        hiragana, katakana = chr(code), chr(code + 0x60)
        assert ZENGIN_TABLE[hiragana] == ZENGIN_TABLE[katakana], hiragana


def test_full_width_latin_and_digits_match_nfkc() -> None:
    for code in [*range(ord("Ａ"), ord("Ｚ") + 1), *range(ord("ａ"), ord("ｚ") + 1),
                 *range(ord("０"), ord("９") + 1)]:
        character = chr(code)
        assert ZENGIN_TABLE[character] == unicodedata.normalize("NFKC", character).upper()


def test_nfkc_alone_would_be_wrong() -> None:
    # Why the table is explicit: NFKC widens half-width kana and keeps small ones.
    assert unicodedata.normalize("NFKC", "ｶﾞ") == "ガ"
    assert unicodedata.normalize("NFKC", "ッ") == "ッ"
    assert to_zengin("ｶﾞ") == "ｶﾞ" and to_zengin("ッ") == "ﾂ"


accepted = st.text(alphabet=sorted(ZENGIN_TABLE), max_size=60)


@given(accepted, st.integers(1, 40))
def test_results_are_short_zengin_text_and_stable(name: str, bytes_max: int) -> None:
    try:
        result = to_zengin(name, bytes_max)
    except NameNotRepresentable:
        return  # an empty name or a stray voiced mark: refused, checked above
    assert set(result) <= ZENGIN_SET
    assert 1 <= len(result.encode("shift_jis")) == len(result) <= bytes_max
    assert result == result.strip(" ")
    assert to_zengin(result, bytes_max) == result


@given(accepted, st.characters().filter(lambda c: c not in ZENGIN_TABLE), accepted)
def test_one_foreign_character_refuses_the_whole_name(
    before: str, foreign: str, after: str
) -> None:
    name = before + foreign + after
    if unicodedata.normalize("NFC", name) != name:
        return  # composition may absorb the character (カ + U+3099 → ガ)
    with pytest.raises(NameNotRepresentable):
        to_zengin(name)
