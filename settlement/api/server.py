"""uvicorn's server with a clean stop on SIGTERM (exit status 0), and its own
log lines (startup, errors with their traceback) and the connection pool's as
JSON like the rest."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import structlog
import uvicorn


class Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM is a clean stop (exit status 0): uvicorn
    itself re-raises the signal once it has shut down."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach only the main thread: its owner stops the server
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self._stop) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for requests
        self.should_exit = True


def json_library_logs(level: int = logging.INFO) -> None:
    """Render uvicorn's and psycopg_pool's standard-library log records as JSON
    lines on stderr (the pool logs each failed connection attempt during a
    database outage, at WARNING; its INFO chatter stays out)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.processors.add_log_level,
                           structlog.processors.TimeStamper(fmt="iso", utc=True),
                           structlog.processors.format_exc_info]))
    for name, name_level in (("uvicorn", level), ("uvicorn.error", level),
                             ("psycopg.pool", max(level, logging.WARNING))):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(name_level)
