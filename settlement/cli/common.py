"""Options shared by the long-running commands (ingest, relay, project)."""

from __future__ import annotations

import argparse


def add_loop_options(parser: argparse.ArgumentParser, *, batch_flag: str, batch_help: str,
                     partitions_help: str = "partitions of new topics",
                     idle_help: str = "stop after this long without records (tests, benchmarks)",
                     ) -> None:
    parser.add_argument("--partitions", type=int, default=4, help=partitions_help)
    parser.add_argument(batch_flag, type=int, default=1000, help=batch_help)
    parser.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                        help=idle_help)
