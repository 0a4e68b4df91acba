"""Auditors' tools over the event store (SPEC §8): the hash chain recomputed (`verify`)
and the history exported with its hashes (`export`)."""
