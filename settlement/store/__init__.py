"""Persistence adapters: transcodings and the PostgreSQL recorder."""
