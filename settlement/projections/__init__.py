"""Read models of the settlement events (SPEC §6, §7, §8), written to PostgreSQL.

One set of pure functions turns a settlement CloudEvent (SPEC §4, `envelope`)
into rows: `ledger` (entries and balance deltas), `jobs` (the fold of each job's
`views`), `escrows` (summaries and items), `receivables` (protection and the
60-day deadline) and `audit` (the global history); `changes` combines them for
one event and for a batch. `store` reads what a batch needs and writes its
changes (`writes`) in one transaction into a `schema`. The Kafka `projector` (its
views kept in memory, `cache`) and the `rebuild` from the event store both go
through `changes.fold`, so they cannot drift; `digest` compares them and
`queries` reads them.
"""
