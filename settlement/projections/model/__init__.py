"""Pure folds of settlement events into read-model rows (no I/O: a test checks it)."""
