"""`settlement reconcile import FILE [--today YYYY-MM-DD] [--bytes-max N]`: import
the safeguarded account's bank statement (Zengin 入出金明細 or CSV, SPEC §13).
The size limit is `--bytes-max`, else `SETTLEMENT_STATEMENT_BYTES_MAX`, else 256 MiB.

Prints the import's report as one JSON line; a refused file prints
`{"error": {"code", "message"}}`, stores nothing and exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from settlement.infra.config import Settings

REFUSED_EXIT = 1
BYTES_MAX_ENV = "SETTLEMENT_STATEMENT_BYTES_MAX"


def add_commands(commands: Any) -> None:
    from settlement.reconcile.importing import STATEMENT_BYTES_MAX

    reconcile = commands.add_parser("reconcile", help="prove the ledger's cash against the bank")
    actions = reconcile.add_subparsers(dest="reconcile_command", required=True,
                                       metavar="{import}")
    imp = actions.add_parser(
        "import", help="import a bank statement (Zengin 入出金明細 or CSV)",
        description="Check the whole statement, then store each line not stored before. "
                    "Importing the same statement again adds nothing.")
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--today", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                     help="the JST date no line may be booked after (default: today in JST)")
    imp.add_argument("--bytes-max", type=_positive, default=None, metavar="N",
                     help=f"refuse a file larger than N bytes (default "
                          f"${BYTES_MAX_ENV}, else {STATEMENT_BYTES_MAX})")
    imp.set_defaults(func=_import)


def _positive(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a number of bytes above 0, not {text!r}")
    return int(text)


def bytes_max(given: int | None, environ: Mapping[str, str] = os.environ) -> int:
    """The size limit: the option, else `SETTLEMENT_STATEMENT_BYTES_MAX`, else the default."""
    from settlement.core.errors import ConfigError
    from settlement.reconcile.importing import STATEMENT_BYTES_MAX

    if given is not None:
        return given
    text = environ.get(BYTES_MAX_ENV, "").strip()
    if not text:
        return STATEMENT_BYTES_MAX
    try:
        return _positive(text)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"{BYTES_MAX_ENV}: {exc}") from None


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.banking.calendar import jst_date
    from settlement.core.errors import SettlementError
    from settlement.infra.bootstrap import open_application
    from settlement.payouts.policy import load_policy
    from settlement.reconcile.importing import import_statement, safeguarded_account

    # The wall clock is read here, at the edge.
    now = datetime.now(UTC)
    today = args.today or jst_date(now)
    try:
        limit = bytes_max(args.bytes_max)
        account = safeguarded_account(load_policy(settings.payout_config_path))
        with open_application(settings) as app:
            report = import_statement(app, args.file, account, today, now, bytes_max=limit)
    except SettlementError as exc:
        sys.stdout.write(orjson.dumps({"error": {"code": exc.code,
                                                 "message": exc.message}}).decode() + "\n")
        return REFUSED_EXIT
    except OSError as exc:
        sys.stdout.write(orjson.dumps({"error": {"code": "statement_unreadable",
                                                 "message": exc.strerror or str(exc)}})
                         .decode() + "\n")
        return REFUSED_EXIT
    sys.stdout.write(orjson.dumps(report.to_json()).decode() + "\n")
    return 0
