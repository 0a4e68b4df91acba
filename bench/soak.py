"""Fault-injection soak (issue 22): `settlement run` under a seeded marketplace load
while PostgreSQL crashes, the broker pauses and service processes are killed,
compared with an undisturbed run of the same load.

One soak runs two service trees at the same time, each `settlement run` on a
PostgreSQL server and a broker of its own (tests/support/outage.py): the
baseline, undisturbed, and the soak, disturbed by a schedule drawn from the seed:

- `postgres`: the server crashes (`pg_ctl -m immediate stop`) and is started
  again after `length_s` (up to --max-outage);
- `broker_pause`: the broker is stopped (SIGSTOP) for `length_s`, then continued;
- `broker_restart`: the broker is stopped and started again empty after
  `length_s`; the soak then does what README prescribes after a broker loss
  (topics created, `settlement relay reset --from 1`, the marketplace's events
  sent again);
- `kill`: SIGKILL of one of `settlement run`'s children (input consumer, relay,
  projector, timer loop or API), which the supervisor restarts.

Both trees get the same load (`bench/soakload.py`: parties, then jobs with
fundings, releases, cancellations, disputes and awards, a payout run and the
bank's results, more jobs, a second payout run and its results), published as a
marketplace would: a slice that fails (the broker is away) is sent again. The
soak's load is spread over --duration seconds; each step waits until what it
sent is stored, so the payout runs see the same history in both trees.

Afterwards, with both pipelines idle (every command stored, every settlement
event projected; a pipeline that does not get there within IDLE_S is reported
stalled) and both trees stopped (SIGTERM, status 0), the two must hold:
the same stored event count, the same command outcomes, the same escrows, and
the same read models (every projections table, compared as a set of rows
without event-store positions, which differ when writes interleave differently:
ledger balances and entries, payouts, receivables, parties, payout runs, ...).
`settlement audit verify` passes and `settlement replay` equals the live read
models, in each tree; the soak's finance API answered only 200 or 503 meanwhile.
Progress goes to stderr as JSON lines; the last line on stdout is

    RESULT seed=N outages=K events=E idle=true equal=true verify=true replay=true ...

and the exit status is 1 when anything differs (the trees' logs and data are
then kept).

Run: `.venv/bin/python bench/soak.py --seed 1 [--duration 240] [--max-outage 120]
[--jobs 120]`: the defaults are one seed of the long run, 5-7.5 minutes
(docs/reliability.md has its results, and the short seed `make test` runs).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import structlog
from machine import describe  # bench/machine.py, beside this file
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the private PostgreSQL and broker of the tests

import soakload  # noqa: E402 (bench/soakload.py, beside this file)

from settlement.banking.calendar import is_closing_day, jst_date  # noqa: E402
from settlement.infra.bootstrap import application  # noqa: E402
from settlement.infra.broker import close, ensure_topics  # noqa: E402
from settlement.infra.config import Settings  # noqa: E402
from settlement.infra.logging import configure_logging  # noqa: E402
from settlement.infra.topics import Topics  # noqa: E402
from settlement.ingest.publisher import MarketplacePublisher  # noqa: E402
from settlement.payouts.run import payout_run  # noqa: E402
from settlement.projections.storage import schema  # noqa: E402
from settlement.projections.storage.digest import query_digest, snapshot  # noqa: E402
from settlement.relay.records import is_settlement_event  # noqa: E402
from support.outage import (  # type: ignore[import-not-found]  # noqa: E402 (tests/support)
    PrivateBroker,
    PrivatePostgres,
    stored_commands,
)

KINDS = ("postgres", "broker_pause", "kill", "broker_restart")
WEIGHTS = {"postgres": 3, "broker_pause": 2, "kill": 3, "broker_restart": 1}
PARTITIONS = 4
TOKENS = "soak-auditor-token:auditor"
STARTUP_S = 120.0
STEP_S = 900.0  # a step (a slice sent, its events stored) waits at most this, outages included
IDLE_S = 600.0
STOP_S = 60.0
POLL_S = 0.5
SEND_S = 30.0
PROBE_S = 0.5
# Columns that name event-store positions: they differ when the input consumers'
# batches interleave differently, and after a PostgreSQL crash (its sequences
# are logged ahead, so notification ids jump).
POSITION_COLUMNS = ("position", "as_of_position", "hash", "prev_hash")
log = structlog.get_logger(component="soak")  # bound when first used: after configure


@dataclass(frozen=True)
class Disturbance:
    at_s: float  # seconds after the load started (or after the previous one ended)
    kind: str
    length_s: float
    target: int  # which child a kill hits: index into the children sorted by name

    def describe(self) -> dict[str, Any]:
        return {"at_s": round(self.at_s, 1), "kind": self.kind,
                "length_s": round(self.length_s, 1)}


def schedule(seed: int, duration_s: float, max_outage_s: float,
             allowed: Sequence[str] = KINDS) -> list[Disturbance]:
    """The disturbances of `seed`: one of each kind allowed, and as many as the load
    lasts minutes in all, at random times within it; outages of 1 s to `max_outage_s`."""
    rng = random.Random(f"{seed}:disturbances")
    kinds = [kind for kind in KINDS if kind in allowed]
    rng.shuffle(kinds)
    weights = [WEIGHTS[kind] for kind in KINDS if kind in allowed]
    kinds += rng.choices([kind for kind in KINDS if kind in allowed], weights,
                         k=max(0, round(duration_s / 60) - len(kinds)))
    times = sorted(rng.uniform(0, duration_s) for _ in kinds)
    return [Disturbance(at, kind, 0.0 if kind == "kill" else
                        rng.uniform(min(1.0, max_outage_s), max_outage_s), rng.randrange(1000))
            for at, kind in zip(times, kinds, strict=True)]


def start_time(now: datetime) -> datetime:
    """The load's first event time: three hours ago, to the minute, and a day earlier
    when that day or the next six hours touch a closing (SPEC §11), so the timer loop
    (wall clock) runs no closing and no timer comes due while the soak runs."""
    start = now.replace(second=0, microsecond=0) - timedelta(hours=3)
    if is_closing_day(jst_date(start)) or jst_date(start) != jst_date(start + timedelta(hours=6)):
        start -= timedelta(days=1, hours=6)
    return start


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(POLL_S)
    return value


class Tree:
    """`settlement run` on a PostgreSQL server and a broker of its own."""

    def __init__(self, root: Path, name: str, consumers: int) -> None:
        self.name = name
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.postgres = PrivatePostgres(self.dir / "pg")
        self.broker = PrivateBroker()
        self.prefix = f"soak-{name}."
        self.topics = Topics(self.prefix)
        self.consumers = consumers
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / "service.log"
        self.api = f"127.0.0.1:{free_port()}"
        # Held while the broker is replaced: the marketplace sends nothing until its
        # topics exist again (a send would create them with the broker's defaults).
        self.broker_gate = threading.Lock()
        self.lost = threading.Event()  # the broker lost its data: the marketplace resends

    @property
    def url(self) -> str:
        return self.postgres.url

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEMENT_")}
        return {**env, "SETTLEMENT_DATABASE_URL": self.url,
                "SETTLEMENT_KAFKA_BOOTSTRAP": self.broker.bootstrap,
                "SETTLEMENT_TOPIC_PREFIX": self.prefix,
                "SETTLEMENT_API_ADDR": self.api,
                "SETTLEMENT_API_TOKENS": TOKENS}

    def start(self) -> None:
        self.postgres.start()
        self.broker.start()
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "settlement.cli", "run", "--timer-interval", "5",
                 "--partitions", str(PARTITIONS), "--consumers", str(self.consumers)],
                cwd=self.dir, env=self.env(), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT)
        expected = 3 + 2 * self.consumers  # input consumers, projectors, relay, timers, API
        wait_until(lambda: self._alive() and "run.child_started" in self.log_text()
                   and len(self.children()) >= expected and self.answers(), STARTUP_S,
                   f"{self.name}: the service")

    def answers(self) -> bool:
        """Whether the finance API answers `/healthz`."""
        try:
            with urllib.request.urlopen(f"http://{self.api}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _alive(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name}: `settlement run` exited "
                               f"({self.process.returncode}):\n{self.log_text()[-4000:]}")
        return True

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_events(self) -> Counter[str]:
        """How many times the service logged each event name."""
        names: Counter[str] = Counter()
        for line in self.log_text().splitlines():
            try:
                names[json.loads(line).get("event", "")] += 1
            except (ValueError, AttributeError):
                continue
        return names

    def children(self) -> dict[str, int]:
        """`settlement run`'s children by name (`ingest-1`, `relay`, ...) → pid."""
        assert self.process is not None
        pid = self.process.pid
        try:
            pids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return {}
        out = {}
        for child in pids:
            try:
                args = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            if "settlement.cli" in args:
                rest = args[args.index("settlement.cli") + 1:]
                name = rest[0] if rest else "?"
                if "--client" in rest:
                    name = rest[rest.index("--client") + 1]
                out[name] = int(child)
        return out

    def stop(self) -> int | None:
        """SIGTERM; its exit status (None if it had to be killed)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        try:
            self.broker.resume()
        except (AssertionError, ProcessLookupError):
            pass
        self.broker.stop()
        if self.postgres.running():
            self.postgres.stop()
        shutil.rmtree(self.postgres.socket_dir, ignore_errors=True)


class Marketplace:
    """The load's sender: slices in order, each sent again until the broker took it
    all (what a marketplace service does; a duplicate changes nothing)."""

    def __init__(self, tree: Tree, load: soakload.Load, pace_s: float,
                 stopped: threading.Event) -> None:
        self.tree = tree
        self.load = load
        # Slice n is sent no earlier than n × pace_s after the first: the load spans the
        # soak's duration, and what an outage held back is sent at once after it.
        self.pace_s = pace_s
        self.started = 0.0
        self.paced = 0
        self.stopped = stopped
        self.loop = asyncio.new_event_loop()
        self.publisher: MarketplacePublisher | None = None
        self.resent = 0
        self.history: list[Sequence[soakload.Event]] = []  # every slice sent, in order

    def run(self) -> None:
        self.started = time.monotonic()
        try:
            for step in self.load.steps:
                if isinstance(step, soakload.PayoutRun):
                    self.send_all([soakload.results(self.load.seed, step, self.pay(step))])
                else:
                    self.send_all(step)
        finally:
            if self.publisher is not None:
                self.loop.run_until_complete(close(self.publisher))
            self.loop.close()

    def send_all(self, chunks: Sequence[Sequence[soakload.Event]]) -> None:
        for chunk in chunks:
            self.paced += 1
            time.sleep(max(0.0, self.started + self.paced * self.pace_s - time.monotonic()))
            self.send(chunk)
        ids = [event["id"] for chunk in chunks for event in chunk]
        wait_until(lambda: self.stopped.is_set() or self.resend_lost() or stored_commands(
                   self.tree.url, ids) == len(ids), STEP_S,
                   f"{self.tree.name}: {len(ids)} events stored")
        log.info("soak.step_stored", tree=self.tree.name, events=len(ids))

    def resend_lost(self) -> bool:
        """After the broker lost its data: send everything sent before again, in order
        (what was stored already is a duplicate, which changes nothing). Always False,
        so that a wait goes on."""
        if self.tree.lost.is_set():
            self.tree.lost.clear()
            history, self.history = self.history, []
            log.info("soak.resending", tree=self.tree.name, slices=len(history))
            for chunk in history:
                self.send(chunk)
        return False

    def send(self, chunk: Sequence[soakload.Event]) -> None:
        self.resend_lost()
        deadline = time.monotonic() + STEP_S
        while not self.stopped.is_set():
            try:
                with self.tree.broker_gate:
                    self.loop.run_until_complete(asyncio.wait_for(self._send(chunk), SEND_S))
                self.history.append(chunk)
                return
            except Exception as error:  # the broker is away: send the slice again
                if self.publisher is not None:
                    self.loop.run_until_complete(close(self.publisher))
                    self.publisher = None
                if time.monotonic() > deadline:
                    raise
                self.resent += 1
                log.info("soak.send_again", tree=self.tree.name, error=type(error).__name__)
                time.sleep(1.0)

    async def _send(self, chunk: Sequence[soakload.Event]) -> None:
        if self.publisher is None:
            self.publisher = MarketplacePublisher(self.tree.broker.bootstrap, self.tree.topics,
                                                  client_id=f"soak-{self.tree.name}")
            await self.publisher.start()
        for event in chunk:
            await self.publisher.publish(event)
        await self.publisher.flush()

    def pay(self, run: soakload.PayoutRun) -> list[str]:
        """The operator's payout run (again after a failure: a run repeated or finished
        later makes nothing twice); its batch's payout ids."""
        settings = Settings(database_url=self.tree.url)
        deadline = time.monotonic() + STEP_S
        while True:
            try:
                app = application(self.tree.url, settings)
                try:
                    report = payout_run(app, run.at, run.run_id)
                finally:
                    app.close()
                ids = [line.payout_id for line in report.batch]
                log.info("soak.payout_run", tree=self.tree.name, run_id=run.run_id,
                         payouts=len(ids))
                return ids
            except Exception as error:
                if time.monotonic() > deadline or self.stopped.is_set():
                    raise
                log.info("soak.payout_run_again", tree=self.tree.name, error=repr(error)[:200])
                time.sleep(1.0)


class Disturber:
    """Carries out the schedule on a tree, one disturbance after another."""

    def __init__(self, tree: Tree, disturbances: Sequence[Disturbance]) -> None:
        self.tree = tree
        self.disturbances = disturbances
        self.done: list[dict[str, Any]] = []
        self.ended_at: float | None = None

    def run(self, started: float) -> None:
        free_at = started
        for d in self.disturbances:
            time.sleep(max(0.0, started + d.at_s - time.monotonic(), free_at - time.monotonic()))
            at = time.monotonic()
            detail = {**d.describe(), "at_s": round(at - started, 1)}
            if d.kind in ("postgres", "broker_pause"):
                take, give_back, away, back = {
                    "postgres": (self.tree.postgres.stop, self.tree.postgres.start,
                                 "soak.postgres_stopped", "soak.postgres_started"),
                    "broker_pause": (self.tree.broker.pause, self.tree.broker.resume,
                                     "soak.broker_paused", "soak.broker_resumed"),
                }[d.kind]
                take()
                log.info(away, **detail)
                time.sleep(d.length_s)
                give_back()
                log.info(back, down_s=round(time.monotonic() - at, 1))
            elif d.kind == "broker_restart":
                with self.tree.broker_gate:
                    self.tree.broker.stop()
                    log.info("soak.broker_stopped", **detail)
                    time.sleep(d.length_s)
                    self.tree.broker.start()
                    self.recover_broker()
                log.info("soak.broker_started", down_s=round(time.monotonic() - at, 1))
            else:
                children = sorted(self.tree.children().items())
                if children:
                    name, pid = children[d.target % len(children)]
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    detail["child"] = name
                log.info("soak.child_killed", **detail)
            self.done.append(detail)
            free_at = time.monotonic() + 1.0
        self.ended_at = time.monotonic()

    def recover_broker(self) -> None:
        """What an operator does after the broker lost its data (README, docs/service.md):
        the topics created again, the relay publishing every event again (the projector
        skips what it applied), the marketplace sending its events again."""
        asyncio.run(ensure_topics(self.tree.broker.bootstrap, self.tree.topics.all,
                                  partitions=PARTITIONS))
        ok, output = cli_check(self.tree, "relay", "reset", "--from", "1")
        if not ok:
            raise RuntimeError(f"relay reset failed: {output}")
        self.tree.lost.set()


class Prober:
    """The finance API asked every PROBE_S while the soak runs: a 200 or a 503 (with
    Retry-After) is an answer; a 500 is a failure; no answer (its process was killed
    and is being restarted) is counted apart."""

    def __init__(self, tree: Tree) -> None:
        self.url = f"http://{tree.api}/v1/balances?currency=JPY&limit=10"
        self.token = TOKENS.partition(":")[0]
        self.statuses: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="prober", daemon=True)

    def run(self) -> None:
        while not self.stop.wait(PROBE_S):
            request = urllib.request.Request(self.url, headers={
                "Authorization": f"Bearer {self.token}"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status = str(response.status)
            except urllib.error.HTTPError as error:
                status = str(error.code)
                if error.code == 503 and not error.headers.get("Retry-After"):
                    status = "503-without-retry-after"
            except (OSError, ValueError):
                status = "no_answer"
            self.statuses[status] += 1

    @property
    def ok(self) -> bool:
        return set(self.statuses) <= {"200", "503", "no_answer"}


# Idle, and what a tree holds -------------------------------------------------------------


@dataclass
class Published:
    """How many stored events the relay publishes, counted incrementally."""

    upto: int = 0
    count: int = 0
    last: int = 0

    def advance(self, app: Any) -> None:
        while True:
            page = app.recorder.select_notifications(start=self.upto + 1, limit=1000)
            for n in page:
                if is_settlement_event(app.mapper.to_domain_event(n)):
                    self.count += 1
                    self.last = n.id
                self.upto = n.id
            if len(page) < 1000:
                return


def idle(tree: Tree, ids: Sequence[str]) -> dict[str, int]:
    """Wait until every command is stored and every settlement event projected."""
    published = Published()
    app = None

    def caught_up() -> bool:
        nonlocal app
        try:
            if stored_commands(tree.url, ids) < len(ids):
                return False
            if app is None:
                app = application(tree.url, Settings(database_url=tree.url))
            published.advance(app)
            with psycopg.connect(tree.url, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("SELECT count(*), coalesce(max(position), 0) FROM "
                                   "projections.audit_log").fetchone()
        except (psycopg.Error, OSError):
            if app is not None:
                app.close()
                app = None
            return False
        assert row is not None
        return bool(row[0] == published.count and row[1] == published.last)

    try:
        wait_until(caught_up, IDLE_S, f"{tree.name}: the pipeline idle")
    finally:
        if app is not None:
            app.close()
    return {"settlement_events": published.count}


@dataclass
class Holdings:
    """What a stopped tree holds, position-free (comparable across trees)."""

    events: int
    commands: str  # digest of (command id, outcome) in id order
    outcomes: dict[str, int]
    escrows: str  # digest of every job's escrow state digest
    tables: dict[str, tuple[int, str]] = field(default_factory=dict)


def table_rows(conn: psycopg.Connection[Any], table: Any) -> tuple[int, str]:
    """Rows of a live projections table as a set (sorted text), without positions."""
    row: sql.Composable = sql.SQL("to_jsonb(t)")
    for column in POSITION_COLUMNS:
        row = sql.SQL("{} - {}").format(row, sql.Literal(column))
    if table.name == "audit_log":  # the published data carries its position and hashes
        data: sql.Composable = sql.SQL("t.data")
        for column in POSITION_COLUMNS:
            data = sql.SQL("{} - {}").format(data, sql.Literal(column))
        row = sql.SQL("{} || jsonb_build_object('data', {})").format(row, data)
    query = sql.SQL('SELECT r FROM (SELECT ({})::text AS r FROM {}.{} AS t) AS rows '
                    'ORDER BY r COLLATE "C"').format(
        row, sql.Identifier(schema.LIVE_SCHEMA), sql.Identifier(table.name))
    digest = query_digest(conn, query)
    return digest.rows, digest.sha256


def holdings(tree: Tree, job_ids: Iterable[str]) -> Holdings:
    app = application(tree.url, Settings(database_url=tree.url))
    try:
        events = len(app.recorder.select_notifications(start=1, limit=10_000_000))
        escrows = hashlib.sha256()
        for job_id in sorted(set(job_ids)):
            escrow = app.escrow(job_id)
            escrows.update(f"{job_id} {None if escrow is None else escrow.state_digest()}\n"
                           .encode())
    finally:
        app.close()
    with psycopg.connect(tree.url, autocommit=True) as conn:
        commands = hashlib.sha256()
        outcomes: Counter[str] = Counter()
        for command_id, outcome in conn.execute(
                'SELECT command_id, outcome FROM settlement_commands ORDER BY command_id '
                'COLLATE "C"'):
            commands.update(f"{command_id} {outcome}\n".encode())
            outcomes[str(outcome).partition(":")[0]] += 1
        tables = {}
        with snapshot(conn):
            for table in schema.DIGESTED:
                tables[table.name] = table_rows(conn, table)
    return Holdings(events, commands.hexdigest(), dict(outcomes), escrows.hexdigest(), tables)


def differences(base: Holdings, soak: Holdings) -> list[str]:
    out = []
    if base.events != soak.events:
        out.append(f"events: {base.events} != {soak.events}")
    if base.commands != soak.commands:
        out.append(f"command outcomes: {base.outcomes} != {soak.outcomes}")
    if base.escrows != soak.escrows:
        out.append("escrows")
    out += [f"{name}: {rows} rows != {soak.tables[name][0]}"
            for name, (rows, sha) in base.tables.items() if soak.tables.get(name) != (rows, sha)]
    return out


def cli_check(tree: Tree, *args: str) -> tuple[bool, str]:
    """`settlement <args>` on the tree's database: whether it exited 0, and its output."""
    done = subprocess.run([sys.executable, "-m", "settlement.cli", *args], env=tree.env(),
                          capture_output=True, text=True, timeout=600, check=False)
    return done.returncode == 0, (done.stdout + done.stderr)[-2000:]


def both(work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """`work` of each item, at the same time (threads): its results in order."""
    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(work, items))


# The soak -----------------------------------------------------------------------------------


def soak(seed: int, duration_s: float, max_outage_s: float, jobs: int, consumers: int,
         root: Path, kinds: Sequence[str] = KINDS) -> bool:
    load = soakload.build(seed, start_time(datetime.now(UTC)), jobs)
    events = load.events
    disturbances = schedule(seed, duration_s, max_outage_s, kinds)
    slices = sum(len(step) for step in load.steps if isinstance(step, list))
    log.info("soak.started", seed=seed, events=len(events), slices=slices,
             duration_s=duration_s, max_outage_s=max_outage_s,
             schedule=[d.describe() for d in disturbances])
    base, disturbed = Tree(root, "baseline", consumers), Tree(root, "soak", consumers)
    stopped = threading.Event()
    started = time.monotonic()
    try:
        both(Tree.start, (base, disturbed))
        log.info("soak.trees_started", seconds=round(time.monotonic() - started, 1))
        senders = {base.name: Marketplace(base, load, 0.0, stopped),
                   disturbed.name: Marketplace(disturbed, load, duration_s / slices, stopped)}
        failures: list[str] = []

        def send(name: str) -> None:
            try:
                senders[name].run()
            except Exception as error:
                failures.append(f"{name}: {error!r}")
                log.error("soak.load_failed", tree=name, error=repr(error))

        threads = {name: threading.Thread(target=send, args=(name,), name=name, daemon=True)
                   for name in senders}
        for thread in threads.values():
            thread.start()
        disturber = Disturber(disturbed, disturbances)
        prober = Prober(disturbed)
        prober.thread.start()
        load_started = time.monotonic()
        disturber.run(load_started)
        all_ids = list(dict.fromkeys(e["id"] for e in events))
        for thread in threads.values():
            thread.join()
        if failures:
            raise RuntimeError("; ".join(failures))
        # The payout results' ids are known once the runs are made: every command
        # each tree stored, the same in both (compared below).
        settled: dict[str, dict[str, int]] = {}
        stalled = []
        for tree in (base, disturbed):
            try:
                settled[tree.name] = idle(tree, all_ids)
            except TimeoutError as error:  # compared all the same: what is missing shows
                stalled.append(tree.name)
                settled[tree.name] = {"settlement_events": -1}
                log.error("soak.stalled", tree=tree.name, error=str(error),
                          service_log=str(tree.log_path))
        assert disturber.ended_at is not None
        recovered_s = time.monotonic() - disturber.ended_at
        log.info("soak.idle", recovered_s=round(recovered_s, 1), stalled=stalled,
                 load_s=round(time.monotonic() - load_started, 1))
        prober.stop.set()
        prober.thread.join()
        log.info("soak.api_answers", **prober.statuses)
        statuses = dict(zip(("baseline", "soak"), both(Tree.stop, (base, disturbed)),
                            strict=True))
        job_ids = {e["data"]["job_id"] for e in events if "job_id" in e["data"]}
        base_held, soak_held = both(lambda tree: holdings(tree, job_ids), (base, disturbed))
        held = {base.name: base_held, disturbed.name: soak_held}
        diffs = differences(base_held, soak_held)
        runs = [(f"{tree.name}_{what}", tree, args) for tree in (base, disturbed)
                for what, args in (("verify", ("audit", "verify")),
                                   ("replay", ("replay", "--schema", "soak_replay")))]
        checks = dict(zip([name for name, _, _ in runs],
                          both(lambda run: cli_check(run[1], *run[2]), runs), strict=True))
        for name, (ok, output) in checks.items():
            if not ok:
                log.error("soak.check_failed", check=name, output=output)
        service = disturbed.log_events()
        outcome = {
            "idle": not stalled,
            "equal": not diffs,
            "verify": checks["soak_verify"][0] and checks["baseline_verify"][0],
            "replay": checks["soak_replay"][0] and checks["baseline_replay"][0],
            "clean_stop": all(code == 0 for code in statuses.values()),
            "api": prober.ok,
        }
        for diff in diffs:
            log.error("soak.differs", what=diff)
        kinds_done = Counter(d["kind"] for d in disturber.done)
        print(f"RESULT seed={seed} outages={len(disturber.done)} "
              f"events={held[disturbed.name].events} "
              + " ".join(f"{k}={str(v).lower()}" for k, v in outcome.items())
              + f" postgres={kinds_done['postgres']} broker_pauses={kinds_done['broker_pause']} "
              f"kills={kinds_done['kill']} broker_restarts={kinds_done['broker_restart']} "
              f"api_answers={'/'.join(f'{k}:{v}' for k, v in sorted(prober.statuses.items()))} "
              f"longest_outage_s={max((d['length_s'] for d in disturber.done), default=0):.0f} "
              f"commands={sum(held[disturbed.name].outcomes.values())} "
              f"settlement_events={settled[disturbed.name]['settlement_events']} "
              f"resent_slices={senders[disturbed.name].resent} "
              f"child_exits={service['run.child_exited']} "
              f"recovered_s={recovered_s:.1f} wall_s={time.monotonic() - started:.0f}",
              flush=True)
        return all(outcome.values())
    finally:
        stopped.set()
        for tree in (base, disturbed):
            tree.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--duration", type=float, default=240.0,
                        help="seconds the soak's load is spread over (default 240)")
    parser.add_argument("--max-outage", type=float, default=120.0,
                        help="longest PostgreSQL outage or broker pause, seconds (default 120)")
    parser.add_argument("--jobs", type=int, default=120, help="jobs per phase (default 120)")
    parser.add_argument("--consumers", type=int, default=1,
                        help="input consumers and projectors per tree (default 1)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"disturbances to draw from (default {','.join(KINDS)})")
    parser.add_argument("--keep", action="store_true",
                        help="keep the trees' directories (logs, data) under --dir "
                             "(kept anyway when the soak fails)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the trees live (default: a temporary directory)")
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--kinds: a comma-separated list of {', '.join(KINDS)}")
    configure_logging()
    # SIGTERM as Ctrl-C: the trees (servers, brokers, services) are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(describe(), flush=True)
    root = Path(tempfile.mkdtemp(prefix=f"soak-{args.seed}-", dir=args.dir))
    ok = False
    try:
        ok = soak(args.seed, args.duration, args.max_outage, args.jobs, args.consumers, root,
                  kinds)
    finally:
        if args.keep or not ok:  # the trees' logs and data, to see what went wrong
            log.info("soak.kept", dir=str(root))
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
