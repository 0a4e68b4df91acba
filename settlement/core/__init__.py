"""Pure domain values and rules shared by every part: money, fees and taxes, the money
each event moves, typed errors with stable codes, commands, the time parser. No I/O."""
