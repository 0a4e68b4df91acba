"""`settlement run` (SPEC §9): the supervisor of the process tree (`supervisor`) and the
demo: a sample marketplace day (`scenario`) applied in process (`day`, `settlement
demo`) or published through Kafka to the running service (`demo`, `run --demo`)."""
