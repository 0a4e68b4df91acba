"""Shared test helpers (importable: pytest puts tests/ on the path)."""
