"""Automatic actions (SPEC §2): the timer pass over jobs with something due (`run`);
the rules themselves are the escrow's (`settlement/escrow/timers.py`)."""
