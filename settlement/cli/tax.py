"""`settlement tax remit --month YYYY-MM [--client ID] [--now T]`: remit each
client's withheld tax of a month (SPEC §12; idempotent: a month remitted again
adds nothing); `settlement tax confirm --remittance ID --bank-ref REF [--now T]`:
the tax office received it; `settlement tax statement --payout ID --out PATH`:
a payout's statement as PDF, stored with its SHA-256 the first time and
checked against it every later time. Each prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from settlement.cli.common import instant
from settlement.core.errors import SettlementError
from settlement.infra.config import Settings

REFUSED_EXIT = 1


def add_commands(commands: Any) -> None:
    tax = commands.add_parser("tax", help="withholding remittances and payment statements")
    actions = tax.add_subparsers(dest="tax_command", required=True,
                                 metavar="{remit,confirm,statement}")
    remit = actions.add_parser("remit", help="remit a month's withheld tax per client")
    remit.add_argument("--month", required=True, metavar="YYYY-MM",
                       help="the JST month of release (it must be over)")
    remit.add_argument("--client", default=None, metavar="ID", help="only this client")
    remit.add_argument("--now", type=instant, default=None,
                       help="business time (ISO 8601 with a timezone; default the clock)")
    remit.set_defaults(func=_remit)
    confirm = actions.add_parser("confirm", help="a remittance the tax office received")
    confirm.add_argument("--remittance", required=True, metavar="ID")
    confirm.add_argument("--bank-ref", required=True, metavar="REF")
    confirm.add_argument("--now", type=instant, default=None)
    confirm.set_defaults(func=_confirm)
    statement = actions.add_parser("statement", help="a payout's statement as PDF")
    statement.add_argument("--payout", required=True, metavar="ID")
    statement.add_argument("--out", type=Path, required=True, metavar="PATH")
    statement.add_argument("--schema", default="projections", help="schema of the read models")
    statement.set_defaults(func=_statement)


def _print(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")


def _refused(error: SettlementError) -> int:
    _print({"error": {"code": error.code, "message": error.message}})
    return REFUSED_EXIT


def _remit(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from settlement.infra.bootstrap import open_application
    from settlement.tax.remit import remit_month
    from settlement.tax.withholding import parse_month

    now = args.now or datetime.now(UTC)  # the wall clock, read at the edge
    try:
        month = parse_month(args.month, now)
        with open_application(settings) as app:
            done = remit_month(app, month, now, args.client)
    except SettlementError as error:
        return _refused(error)
    _print({"month": str(month), "remittances": [
        {**asdict(r), "withheld": str(r.withheld), "remitted": str(r.remitted)} for r in done]})
    return 0


def _confirm(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.tax.remit import confirm

    try:
        with open_application(settings) as app:
            client = confirm(app, args.remittance, args.bank_ref, args.now or datetime.now(UTC))
    except SettlementError as error:
        return _refused(error)
    _print({"remittance_id": args.remittance, "client_id": client, "status": "confirmed"})
    return 0


def _statement(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from settlement.api.queries import tax as tax_queries
    from settlement.documents import pdf
    from settlement.infra.postgres import database
    from settlement.store import documents
    from settlement.tax.statement import document

    with database(settings) as url, psycopg.connect(url) as conn:
        found = tax_queries.statement(conn, args.schema, args.payout)
        if found is None:
            _print({"error": {"code": "payout_not_found", "message": f"no payout {args.payout}"}})
            return REFUSED_EXIT
        content = pdf.render(document(found[0]))
        kept = documents.store_once(conn, "statement", args.payout, content)
    same = kept.sha256 == pdf.sha256(content)
    if same:
        args.out.write_bytes(content)
    _print({"payout_id": args.payout, "sha256": kept.sha256, "identical": same})
    return 0 if same else REFUSED_EXIT
