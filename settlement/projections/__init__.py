"""Read models of the settlement events (SPEC §6, §7, §8), written to PostgreSQL.

- `model/`: pure functions (no I/O) that turn a settlement CloudEvent (SPEC §4,
  `model.envelope`) into rows: `ledger` (entries and balance deltas), `jobs` (the
  fold of each job's `views`), `escrows` (summaries and items), `receivables`
  (protection and the 60-day deadline), `payouts` and `audit` (the global
  history); `changes` combines them for one event and for a batch (`fold`).
- `storage/`: the tables (`schema`), a batch's reads and writes in one
  transaction (`store`, `writes`), and table digests to compare two schemas
  (`digest`).
- `live/`: the Kafka `projector` (its views kept in memory, `cache`) and its
  metrics.
- `rebuild/`: every projection made again from the event store (`serial`, with
  the `bulk` writer) and the auditors' `replay`.

The live projector and the rebuild both go through `model.changes.fold`, so they
cannot drift; the API reads the tables (`settlement/api/queries/`).
"""
