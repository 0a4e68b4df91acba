"""Every projection made again from the event store (`serial`, with the `bulk` writer),
and the auditors' replay into a fresh schema (`replay`, SPEC §8)."""
