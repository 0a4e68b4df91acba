"""Paying out through Japanese banks (SPEC §10, §11): pure building blocks.

`calendar` (bank business days, closings, payment days), `registration`
(invoice registration numbers), `kana` (names in the Zengin character set),
`accounts` (a party's bank account), `transfers` and `zengin` (the 総合振込
file). No I/O and no clock: dates and configuration come in as arguments.
"""
