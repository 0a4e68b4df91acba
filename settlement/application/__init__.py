"""The use-case layer: batches of commands applied to the aggregates in one transaction
with their input positions (`app`), a named handler per command type (`handlers`)."""
