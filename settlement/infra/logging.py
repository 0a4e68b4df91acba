"""Structured JSON logs (structlog), one object per line on stderr."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    # aiokafka logs every failed attempt of the retries it makes on its own (several
    # a second while the broker is away); the service's processes log an outage
    # themselves, once, with its length (`settlement.infra.outage`).
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )


class _StderrLogger:
    """Writes each line to the `sys.stderr` of the moment, not the one there when
    logging was configured (structlog's PrintLogger keeps that file: a command run
    in-process under a test's captured stderr left every later log line writing to
    a closed file)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*args: object) -> _StderrLogger:
    return _StderrLogger()


def get_logger(**bound: object) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger().bind(**bound)
    return logger
