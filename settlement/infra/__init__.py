"""Adapters for the services the settlement service runs on: PostgreSQL and Kafka."""
