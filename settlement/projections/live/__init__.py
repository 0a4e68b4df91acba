"""The Kafka projector (`projector`): settlement events folded into the read models,
exactly once in effect, its views kept in memory (`cache`), its metrics."""
