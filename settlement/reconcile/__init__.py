"""Reconciliation (SPEC §13): the safeguarded account's bank statement against the
ledger's cash. `lines`: statement lines from either format and their ids;
`events`: what is stored; `importing`: `settlement reconcile import`."""
