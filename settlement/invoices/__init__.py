"""Qualified invoices (適格請求書) for the platform's charges (SPEC §12).

`months` (JST calendar months), `charges` and `rules` are pure: the charges of a
party's month in, the invoice's lines, totals and tax per rate and the true-up
postings out. `events` holds the numbering stream of a month of issue; `scan`
reads the charges from the event store (the authority); `issue` stores the
invoices; `document` is the invoice as a PDF; `files` its stored SHA-256.
"""
