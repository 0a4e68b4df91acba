"""What the command modules share: the long-running commands' options (ingest,
relay, project) and their signal loop, and the type of every time option."""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from settlement.core.times import NotAnInstant, parse_instant

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Set by SIGTERM or SIGINT outside the event loop (while a process starts or ends).
_stop_requested = threading.Event()


def add_loop_options(parser: argparse.ArgumentParser, *, batch_flag: str, batch_help: str,
                     partitions_help: str = "partitions of new topics",
                     idle_help: str = "stop after this long without records (tests, benchmarks)",
                     ) -> None:
    parser.add_argument("--partitions", type=int, default=4, help=partitions_help)
    parser.add_argument(batch_flag, type=int, default=1000, help=batch_help)
    parser.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                        help=idle_help)


async def until_signal(run: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """`run(stop)`, where `stop` is set on SIGTERM or SIGINT: the loop finishes its
    batch and returns instead of being killed in the middle of one."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    if _stop_requested.is_set():  # asked before the loop ran
        stop.set()
    return await run(stop)


def catch_stop_signals() -> None:
    """From now on SIGTERM and SIGINT only ask the process to stop (`stop` in
    `until_signal`, however early or late they come): a long-running command stops
    with status 0, never killed by the signal's default action."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: _stop_requested.set())


def run_until_signal(run: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """`asyncio.run(until_signal(run))` with the signals caught before and after
    (the event loop gives them back to their default actions when it closes)."""
    catch_stop_signals()
    try:
        return asyncio.run(until_signal(run))
    finally:
        catch_stop_signals()


def instant(text: str) -> datetime:
    """The argparse type of a time option (`--now`, `--as-of`): an ISO 8601 time
    with a UTC offset, as `parse_instant` reads it."""
    try:
        return parse_instant(text)
    except NotAnInstant as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
