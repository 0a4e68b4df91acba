"""`settlement demo`: a sample marketplace day through the application, then its
ledger (exit status 1 if the books do not balance)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from settlement.infra.config import Settings


def add_commands(commands: Any) -> None:
    """Add `demo` to the `settlement` subparsers `commands`."""
    demo = commands.add_parser("demo", help="run a sample marketplace day and print the ledger")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.service.day import run_demo

    with open_application(settings) as app:
        return 0 if run_demo(app, sys.stdout) else 1
