"""Wiring and adapters for what the service runs on: configuration (`config`), the one
place that opens the application (`bootstrap`), PostgreSQL and Kafka (embedded or
configured: `postgres`, `broker`, `probe`), topic names (`topics`), structured
logging (`logging`) and failpoints for crash tests (`failpoints`)."""
