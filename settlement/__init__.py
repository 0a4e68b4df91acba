"""Event-sourced escrow and payment settlement service."""
