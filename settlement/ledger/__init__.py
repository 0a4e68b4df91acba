"""Double-entry ledger rules (SPEC §6): accounts, postings, and the rules that
turn recorded money movements into balanced postings."""
