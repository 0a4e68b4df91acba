"""`settlement run` (SPEC §9): the whole service as one process tree.

The parent starts the embedded PostgreSQL and broker when SETTLEMENT_DATABASE_URL
/ SETTLEMENT_KAFKA_BOOTSTRAP are unset, creates the topics and the read models'
schema, and runs each part as a child process with the URLs in its environment:
the input consumer (`settlement ingest`), the outbox relay (`settlement relay`),
the projector (`settlement project`), the timer loop (`settlement timers loop`)
and the finance API (`settlement api`). Every process logs JSON lines on stderr.

A child that dies is restarted (each part resumes from its stored positions)
after RESTART_DELAY_S; one that keeps dying (more than RESTARTS_MAX times within
RESTART_WINDOW_S: a dependency away for long, or a defect) is restarted after
delays that double up to RESTART_DELAY_MAX_S, jittered, and logged
(`run.child_backing_off`): the tree never stops on its own, since an outage
outlived by backing off ends with the service running again. The parent's view
of its children is its heartbeat row (part `supervisor`, `settlement.infra.
heartbeats`), for the API's `/metrics`. SIGTERM or SIGINT stops every child with
SIGTERM (each finishes its batch and stops its loop), waits for them and exits 0. Each child
runs in a session of its own, so only the parent gets a terminal's signals, and
children get SIGTERM too if the parent itself dies (Linux parent-death signal).

`--demo` also publishes a sample marketplace day (all three formats and a
dispute) to Kafka, waits until it is ingested, runs a payout run (its batch CSV
under the state directory) and reports one payout settled by the bank, waits
until the read models caught up, and prints the API address, a token and the
trial-balance URL.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from settlement.infra.config import Settings
from settlement.infra.logging import get_logger

RESTARTS_MAX = 5
RESTART_WINDOW_S = 60.0
RESTART_DELAY_S = 1.0
RESTART_DELAY_MAX_S = 30.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.2
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Part:
    name: str
    args: tuple[str, ...]


def default_consumers(partitions: int) -> int:
    """Processes per consumer group: one per core, at most one per partition."""
    return max(1, min(partitions, os.cpu_count() or 1))


def parts(timer_interval_s: float, partitions: int, consumers: int = 1) -> list[Part]:
    """The children, in start order (consumers of a topic after its producer's topics
    exist). `consumers` input consumers and as many projectors: each pair of
    groups splits its topics' partitions (one Python process is CPU-bound at
    about 6,000 events/s; see docs/benchmarks.md)."""
    p = ("--partitions", str(partitions))

    def group(name: str, command: str, client: str) -> list[Part]:
        if consumers == 1:
            return [Part(name, (command, *p))]
        return [Part(f"{name}-{n}", (command, "--client", f"{client}-{n}", *p))
                for n in range(1, consumers + 1)]

    return [
        *group("ingest", "ingest", "settlement-ingest"),
        Part("relay", ("relay", *p)),
        *group("project", "project", "settlement-projector"),
        Part("timers", ("timers", "loop", "--interval", str(timer_interval_s))),
        Part("api", ("api",)),
    ]


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc() if sys.platform.startswith("linux") else None  # loaded before any fork


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    part: Part
    env: Mapping[str, str]
    process: subprocess.Popen[bytes] | None = None
    exits: deque[float] = field(default_factory=deque)  # monotonic times of unexpected exits
    restarts: int = 0
    restart_at: float | None = None  # monotonic time of the restart planned, if any
    restart_delay_s: float = 0.0  # the last restart's delay

    @property
    def backing_off(self) -> bool:
        return self.restart_at is not None and len(self.exits) > RESTARTS_MAX

    def state(self) -> dict[str, Any]:
        """What the supervisor's heartbeat says of this child."""
        return {"status": "backing_off" if self.backing_off else "running",
                "restarts": self.restarts, "restart_delay_s": round(self.restart_delay_s, 1)}

    def start(self) -> None:
        command = [sys.executable, "-m", "settlement.cli", *self.part.args]
        # A session of its own: a terminal's Ctrl-C (or a signal to the parent's
        # process group) reaches only the parent, which stops each child exactly once.
        self.process = subprocess.Popen(
            command, env=dict(self.env), stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent if _LIBC is not None else None)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def restart_delay_s(exits: int) -> float:
    """The delay before restarting a child that exited `exits` times within
    RESTART_WINDOW_S: RESTART_DELAY_S, then, past RESTARTS_MAX, doubling up to
    RESTART_DELAY_MAX_S, drawn from its upper half (children that died of the same
    outage do not all come back at the same moment)."""
    if exits <= RESTARTS_MAX:
        return RESTART_DELAY_S
    delay = min(RESTART_DELAY_MAX_S, RESTART_DELAY_S * 2 ** (exits - RESTARTS_MAX))
    return random.uniform(delay / 2, delay)


class Supervisor:
    """Starts the children, restarts the ones that die, stops them all on request."""

    def __init__(self, children: Sequence[Child]) -> None:
        self.children = list(children)
        self.stopping = threading.Event()
        self.log = get_logger(component="run")

    def state(self) -> dict[str, Any]:
        """The heartbeat's detail: each child's status, restarts and last delay."""
        return {"children": {child.part.name: child.state() for child in self.children}}

    def start(self) -> None:
        for child in self.children:
            child.start()
            self.log.info("run.child_started", child=child.part.name, pid=child.pid)

    def watch(self, until: threading.Event) -> None:
        """Restart dead children until `until` is set."""
        while not until.wait(POLL_S):
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        child.restart_at = None
                        child.start()
                        self.log.info("run.child_restarted", child=child.part.name,
                                      pid=child.pid, restarts=child.restarts)
                elif (code := child.poll()) is not None:
                    self._exited(child, code, now)

    def _exited(self, child: Child, code: int, now: float) -> None:
        """Plan the restart of `child`, which exited with `code`."""
        child.exits.append(now)
        while child.exits and now - child.exits[0] > RESTART_WINDOW_S:
            child.exits.popleft()
        child.restarts += 1
        child.restart_delay_s = restart_delay_s(len(child.exits))
        child.restart_at = now + child.restart_delay_s
        self.log.error("run.child_exited", child=child.part.name, status=code,
                       restarting_in_s=round(child.restart_delay_s, 1))
        if child.backing_off:
            self.log.warning("run.child_backing_off", child=child.part.name,
                             exits=len(child.exits), within_s=RESTART_WINDOW_S,
                             restart_delay_s=round(child.restart_delay_s, 1))

    def stop(self) -> dict[str, int | None]:
        """SIGTERM to every child, then wait for all of them (kill after STOP_TIMEOUT_S)."""
        self.log.info("run.stopping")
        for child in reversed(self.children):
            child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        codes = {child.part.name: child.wait(deadline) for child in self.children}
        self.log.info("run.children_stopped", statuses=codes)
        return codes


def child_env(settings: Settings, database_url: str, bootstrap: str,
              extra: Mapping[str, str] | None = None,
              environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    return {**environ, "SETTLEMENT_DATABASE_URL": database_url,
            "SETTLEMENT_KAFKA_BOOTSTRAP": bootstrap, "SETTLEMENT_API_ADDR": settings.api_addr,
            "SETTLEMENT_TOPIC_PREFIX": settings.topic_prefix, **(extra or {})}


def forget_broker_positions(url: str, settings: Settings, topics: Any) -> int:
    """Before the children start on a fresh embedded broker (it keeps nothing across
    runs): forget the input consumer's and the projector's stored offsets, which
    name records of the previous broker, and make the relay publish every event
    again (the projector skips what it already applied, by version). Without this,
    input published at offsets below the old ones would be skipped, and events the
    old broker held but the projector had not read yet would never arrive.
    Returns the relay position replaced."""
    from psycopg import sql

    from settlement.infra.bootstrap import application
    from settlement.projections.storage import schema
    from settlement.relay.positions import RelayPositions

    app = application(url, settings)
    try:
        positions = RelayPositions(app.store)
        positions.create_table()
        previous = positions.reset("relay", 0)
        with app.store.datastore.transaction(commit=True) as curs:
            curs.execute(sql.SQL("DELETE FROM {}.{} WHERE topic = ANY(%s)").format(
                sql.Identifier(app.store.datastore.schema), app.store.positions_table),
                (list(topics.inputs),))
            curs.execute(sql.SQL("DELETE FROM {}.positions WHERE topic = %s").format(
                sql.Identifier(schema.LIVE_SCHEMA)), (topics.events,))
    finally:
        app.close()
    return previous


def demo_tokens() -> tuple[str, str]:
    """A fresh `SETTLEMENT_API_TOKENS` value for the demo and its auditor token."""
    auditor, finance = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    return f"{auditor}:auditor,{finance}:finance", auditor


def run_service(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    import asyncio

    from settlement.infra import liveness, pool
    from settlement.infra.broker import ensure_topics, kafka
    from settlement.infra.postgres import database
    from settlement.infra.topics import Topics
    from settlement.projections.storage import schema
    log = get_logger(component="run")
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    extra: dict[str, str] = {}
    token = None
    if args.demo and not settings.api_tokens:
        extra["SETTLEMENT_API_TOKENS"], token = demo_tokens()
    started = time.monotonic()
    try:
        with database(settings) as url, kafka(settings) as bootstrap:
            topics = Topics(settings.topic_prefix)
            asyncio.run(ensure_topics(bootstrap, topics.all, partitions=args.partitions))
            with pool.connect(url, autocommit=True) as conn:
                schema.create(conn, schema.LIVE_SCHEMA)
                liveness.create_table(conn)
            if not settings.kafka_bootstrap:
                republish = forget_broker_positions(url, settings, topics)
                log.info("run.fresh_broker", relay_republishes_from=1,
                         relay_was_at=republish)
            env = child_env(settings, url, bootstrap, extra)
            supervisor = Supervisor([Child(part, env) for part in
                                     parts(args.timer_interval, args.partitions,
                                           args.consumers or default_consumers(args.partitions))])
            log.info("run.started", database="configured" if settings.database_url
                     else "embedded", kafka=bootstrap, api=settings.api_addr,
                     seconds=round(time.monotonic() - started, 3))
            if stop.is_set():
                return 0
            supervisor.start()
            if args.demo:
                demo = threading.Thread(
                    target=_demo_thread, name="demo", daemon=True,
                    args=(settings, url, bootstrap, token, out, stop))
                demo.start()
            beats = liveness.Liveness(url, "supervisor", log, "run", stall_s=None,
                                      detail=supervisor.state)
            beats.start()
            try:
                supervisor.watch(stop)
            finally:
                supervisor.stop()
                beats.stop()
        log.info("run.stopped", signal=received[0] if received else None)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _demo_thread(settings: Settings, url: str, bootstrap: str, token: str | None,
                 out: TextIO, stop: threading.Event) -> None:
    from settlement.service.demo import run_demo_day

    log = get_logger(component="demo")
    try:
        run_demo_day(settings, url, bootstrap, token, out, stop)
    except Exception as exc:  # the service keeps running; the demo says why it stopped
        log.error("demo.failed", error=repr(exc))
