"""`settlement invoices issue --month YYYY-MM [--now T] [--no-pdf]` and
`settlement invoices correct --number INV-YYYYMM-NNNNNN [--now T]`: qualified
invoices for the platform's charges (SPEC §12, `docs/invoices.md`).

A month is issued once it is over in Japan (`--now`, default the wall clock):
else `month_not_over` and nothing is written. Issuing again issues nothing new
and reports the invoices already issued. One JSON line on stdout; exit 0, 1 if
a party could not be invoiced, 2 for a refusal (`{"error": {code, message}}`).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from settlement.cli.common import instant
from settlement.infra.config import Settings


def add_commands(commands: Any) -> None:
    """Add `invoices issue` and `invoices correct` to the `settlement` subparsers."""
    invoices = commands.add_parser("invoices", help="qualified invoices for the platform's fees")
    actions = invoices.add_subparsers(dest="invoices_command", required=True,
                                      metavar="{issue,correct}")
    issue = actions.add_parser(
        "issue", help="issue a month's invoices",
        description="Issue an invoice to each party the platform charged in the JST month "
                    "(worker fees, client fees, transfer fees) and has not invoiced yet.")
    issue.add_argument("--month", required=True, metavar="YYYY-MM", help="the JST month")
    issue.add_argument("--now", type=instant, default=None,
                       help="business time of the issue (ISO 8601 with a timezone; default "
                            "the wall clock): the month must be over, and the invoices are "
                            "numbered in its JST month")
    issue.add_argument("--no-pdf", action="store_true",
                       help="do not render and store the PDFs now (the API renders them)")
    issue.add_argument("--batch-parties", type=int, default=1_000, metavar="N",
                       help="invoices stored per transaction (default 1000)")
    issue.set_defaults(func=_issue)
    fix = actions.add_parser(
        "correct", help="correct an issued invoice with a new one citing it",
        description="Issue a new invoice of the charges the event store holds now for the "
                    "invoice's party and month, citing it (when they changed).")
    fix.add_argument("--number", required=True, metavar="INV-YYYYMM-NNNNNN")
    fix.add_argument("--now", type=instant, default=None,
                     help="business time of the correction (default the wall clock)")
    fix.set_defaults(func=_correct)


def _issue(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.invoices.monthly import issue_cli

    now = args.now or datetime.now(UTC)  # the wall clock is read here, at the edge
    with open_application(settings) as app:
        return issue_cli(app, args.month, now, settings.invoice_issuer, pdfs=not args.no_pdf,
                         batch_parties=args.batch_parties)


def _correct(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.invoices.monthly import correct_cli

    now = args.now or datetime.now(UTC)
    with open_application(settings) as app:
        return correct_cli(app, args.number, now, settings.invoice_issuer)
