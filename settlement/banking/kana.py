"""Names in the Zengin character set (SPEC §11 "Zengin file", 受取人名).

The Zengin set is: half-width katakana ｱ–ﾝ, the voiced marks ﾞ and ﾟ, A–Z,
0–9, space and `( ) . - /`; each is one byte in Shift_JIS. `to_zengin` maps:

- full-width katakana to half-width; a voiced kana to its kana followed by
  ﾞ or ﾟ (ガ → ｶﾞ, パ → ﾊﾟ, ヴ → ｳﾞ);
- small kana (ァ, ッ, ャ, ヮ, ヵ … and ｧ, ｯ, ｬ …) to their large forms; ヲ and ｦ
  to ｵ; the archaic ヰ, ヱ to ｲ, ｴ (as banks read them);
- hiragana as the katakana of the same sound (やまだ → ﾔﾏﾀﾞ): a holder name
  typed in hiragana names the same account;
- the long-vowel mark ー/ｰ to `-`, as do the full-width hyphen forms (－, and
  ‐ and − which Shift_JIS 0x815D/0x817C decode to);
- a–z to A–Z; full-width Latin letters, digits, space and `（）．－／` to
  their half-width forms;
- a decomposed voiced mark (カ + U+3099, as macOS stores names) is composed
  first (NFC), and the spacing marks ゛ ゜ become ﾞ ﾟ.

A voiced mark must follow a kana that takes it (ﾞ after ｶ–ﾄ, ﾊ–ﾎ and ｳ; ﾟ
after ﾊ–ﾎ), or the name would reach the bank garbled. Anything else (kanji,
emoji, ・, iteration marks ヽゝ, other symbols) refuses the whole name with
`name_not_representable`; so does a name that is empty after conversion.
Spaces at either end are dropped. The result is cut at `bytes_max` (30, the
受取人名 field), cutting plainly as §11 says, even between a kana and its mark.
Converting a result again gives it back unchanged.
"""

from __future__ import annotations

import string
import unicodedata

from settlement.core.errors import InvalidInput

HOLDER_NAME_BYTES_MAX = 30

_HALF_KANA = "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝ"
_VOICED_MARK, _SEMI_VOICED_MARK = "ﾞ", "ﾟ"
ZENGIN_CHARACTERS = frozenset(
    _HALF_KANA + _VOICED_MARK + _SEMI_VOICED_MARK
    + string.ascii_uppercase + string.digits + " ().-/"
)
# The kana a voiced mark may follow.
_TAKES_VOICED = frozenset("ｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾊﾋﾌﾍﾎｳ")
_TAKES_SEMI_VOICED = frozenset("ﾊﾋﾌﾍﾎ")


def _pairs(sources: str, targets: str, suffix: str = "") -> dict[str, str]:
    assert len(sources) == len(targets)
    return {source: target + suffix for source, target in zip(sources, targets, strict=True)}


# Every character the converter accepts, and what it writes for it.
KATAKANA_TABLE: dict[str, str] = {
    **_pairs("アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホ",
           "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎ"),
    **_pairs("マミムメモヤユヨラリルレロワン", "ﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝ"),
    **_pairs("ヲヰヱ", "ｵｲｴ"),
    **_pairs("ァィゥェォッャュョヮヵヶ", "ｱｲｳｴｵﾂﾔﾕﾖﾜｶｹ"),
    **_pairs("ガギグゲゴザジズゼゾダヂヅデドバビブベボヴ", "ｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾊﾋﾌﾍﾎｳ", "ﾞ"),
    **_pairs("パピプペポ", "ﾊﾋﾌﾍﾎ", "ﾟ"),
    **_pairs(_HALF_KANA, _HALF_KANA),
    **_pairs("ｦｧｨｩｪｫｯｬｭｮ", "ｵｱｲｳｴｵﾂﾔﾕﾖ"),
    **_pairs("ﾞﾟ゛゜", "ﾞﾟﾞﾟ"),
    **_pairs("ーｰ－‐−", "-----"),
}
# Hiragana ぁ–ゖ sit exactly 0x60 below katakana ァ–ヶ; each reads as its katakana.
HIRAGANA_TABLE: dict[str, str] = {
    chr(code - 0x60): KATAKANA_TABLE[chr(code)]
    for code in range(ord("ァ"), ord("ヶ") + 1)
    if chr(code) in KATAKANA_TABLE
}
LATIN_TABLE: dict[str, str] = {
    **_pairs(string.ascii_uppercase + string.digits, string.ascii_uppercase + string.digits),
    **_pairs(string.ascii_lowercase, string.ascii_uppercase),
    **_pairs(" ().-/", " ().-/"),
    **_pairs("　（）．／", " ()./"),
    # Full-width Ａ–Ｚ, ａ–ｚ, ０–９: NFKC gives the ASCII form, upper-cased here.
    **{
        chr(code): unicodedata.normalize("NFKC", chr(code)).upper()
        for block in (("Ａ", "Ｚ"), ("ａ", "ｚ"), ("０", "９"))
        for code in range(ord(block[0]), ord(block[1]) + 1)
    },
}
ZENGIN_TABLE: dict[str, str] = {**KATAKANA_TABLE, **HIRAGANA_TABLE, **LATIN_TABLE}


class NameNotRepresentable(InvalidInput):
    """A name that cannot be written in the Zengin character set."""

    code = "name_not_representable"


def to_zengin(name: str, bytes_max: int = HOLDER_NAME_BYTES_MAX) -> str:
    """`name` in the Zengin character set, cut at `bytes_max` bytes (one per character)."""
    if bytes_max < 1:
        raise ValueError(f"bytes_max must be at least 1, got {bytes_max}")
    converted: list[str] = []
    for position, character in enumerate(unicodedata.normalize("NFC", name), start=1):
        target = ZENGIN_TABLE.get(character)
        if target is None:
            raise NameNotRepresentable(f"character {position} of the name is not in the Zengin set")
        converted.append(target)
    result = "".join(converted).strip(" ")
    _check_voiced_marks(result)
    if not result:
        raise NameNotRepresentable("the name is empty")
    # A cut can end on a space, which the field's padding would add anyway.
    return result[:bytes_max].rstrip(" ")


def _check_voiced_marks(result: str) -> None:
    for position, character in enumerate(result):
        before = result[position - 1] if position else ""
        if character == _VOICED_MARK and before not in _TAKES_VOICED:
            raise NameNotRepresentable(f"ﾞ at {position + 1} follows no kana that takes it")
        if character == _SEMI_VOICED_MARK and before not in _TAKES_SEMI_VOICED:
            raise NameNotRepresentable(f"ﾟ at {position + 1} follows no kana that takes it")

