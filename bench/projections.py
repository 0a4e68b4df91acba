"""Projections benchmark (issue: settlement events to Kafka and the projections).

1. Throughput: stores `--jobs` task jobs (20 settlement events each: 100,000 by
   default) through `SettlementApplication.handle_batch`, publishes them to
   `settlement.events` with the relay, then measures the projector consuming
   that topic from the embedded broker into PostgreSQL (read models and consumed
   positions, one transaction per poll batch), from its first batch to its last
   commit. Baseline, same run: a raw read of the notification log
   (`select_notifications` pages of 1,000).
   `--consumers` projector processes (default: one per core, as `settlement run`
   starts them) share the topic's partitions in one group; with more than one,
   one projector alone is measured too, into a database of its own.
2. Latency: `settlement ingest`, `settlement relay` and `settlement project` run
   as processes of their own, as `settlement run` starts them (`--consumers`
   input consumers and projectors) on a fresh database while marketplace records are
   published at a steady `--rate` (2,000/s) for `--seconds`; for each record, the
   time from its publication to its settlement events being visible in the
   projections (`audit_log` rows by causation id, written in the transaction
   that writes the ledger entries and balances).
   While the load is offered (sampled just before the load generator starts and
   just after the broker acknowledged its last record), the CPU seconds of every
   process of the pipeline, from /proc (`bench/cpu.py`): the input consumers,
   the relay and the projectors (each with its children), the broker, and
   PostgreSQL (the postmaster and every backend and helper process under it: a
   backend that exits meanwhile counts through the postmaster's reaped-children
   times, a live one through its own), divided by the records published:
   `cpu_us_per_record`, printed with the share of each process and PostgreSQL's
   share by the service its backends serve (their application name). The
   benchmark's own work is left out: the load generator and the latency probe
   run in this process, and the probe's backend is skipped (the broker's work
   for the load generator's produce requests is in: a marketplace's records
   arrive that way). A broker or PostgreSQL on another machine is left out and
   named as not measured. Then the p50 and p99 of the records published in each
   second of the load, and each process's share of a core in each second: whether
   the latency and the costs hold as the run goes on.
3. Backlog (`--backlog`, default 30,000 records; 0 skips it): the same pipeline on
   a fresh database and topics, handed the records all at once, and the CPU of its
   processes from then until the last record's events are in the projections: the
   CPU per record at the largest batches each stage takes, which no batching goes
   below (`cpu_us_per_record_backlog`).

The last line is (one line)

    RESULT projector_events_per_s=<n> baseline_events_per_s=<n> e2e_p50_ms=<n>
           e2e_p99_ms=<n> cpu_us_per_record=<n> cpu_us_per_record_backlog=<n>

(without the last field when `--backlog 0`).

Run: `.venv/bin/python bench/projections.py` (embedded PostgreSQL and broker
unless SETTLEMENT_DATABASE_URL / SETTLEMENT_KAFKA_BOOTSTRAP are set); smoke
test: `--jobs 10 --rate 100 --seconds 1 --consumers 1 --backlog 40`
(`tests/integration/test_bench_projections.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu  # noqa: E402  (bench/cpu.py)
from ingest import in_processes, job_events  # noqa: E402  (the ingestion benchmark's)
from machine import describe  # noqa: E402  (bench/machine.py)

from settlement.core.commands import Command  # noqa: E402
from settlement.infra.bootstrap import application, owner_env, tune_gc  # noqa: E402
from settlement.infra.broker import ensure_topics, kafka  # noqa: E402
from settlement.infra.config import Settings  # noqa: E402
from settlement.infra.postgres import create_database, database, drop_database  # noqa: E402
from settlement.infra.topics import Topics  # noqa: E402
from settlement.projections.live.projector import Projector  # noqa: E402
from settlement.projections.storage.schema import LIVE_SCHEMA  # noqa: E402
from settlement.projections.storage.store import Store  # noqa: E402
from settlement.relay.service import Relay  # noqa: E402
from settlement.service.supervisor import default_consumers, parts  # noqa: E402

STORE_BATCH_COMMANDS = 1_000
PAGE_EVENTS = 1_000
PARTITIONS = 4
POLL_S = 0.01  # how often the latency probe looks at the projections (adds ≤ 10 ms)
TICK_S = 0.005  # the load generator hands records over this often (its producer lingers 5 ms)
READY_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 120.0
DRAIN_POLL_S = 0.05  # how often a backlog's end is looked for
DONE_POLL_S = 0.5  # how often a projector of the throughput run counts the events projected
BACKLOG_RATE = 1e9  # records/s: the whole backlog is handed to the producer at once


# Throughput ---------------------------------------------------------------------------


def commands(events: list[dict[str, Any]]) -> list[Command]:
    return [Command.create(e["id"], e["type"], datetime.fromisoformat(e["time"]), e["data"])
            for e in events]


def store_jobs(url: str, settings: Settings, jobs: int) -> int:
    """Store `jobs` task jobs through the application; the number of events stored."""
    app = application(url, settings, owner_env())
    try:
        batch: list[dict[str, Any]] = []
        for job in range(jobs):
            batch += job_events(job)
            if len(batch) >= STORE_BATCH_COMMANDS or job == jobs - 1:
                app.handle_batch(commands(batch))
                batch = []
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def baseline(url: str, settings: Settings) -> tuple[int, float]:
    """Raw read of the whole notification log in pages: (events, events/s)."""
    app = application(url, settings)
    try:
        count, position = 0, 0
        started = time.perf_counter()
        while page := app.recorder.select_notifications(position + 1, PAGE_EVENTS):
            count += len(page)
            position = page[-1].id
        return count, count / (time.perf_counter() - started)
    finally:
        app.close()


def relay(url: str, settings: Settings, bootstrap: str, topics: Topics) -> float:
    app = application(url, settings)
    try:
        stats = asyncio.run(Relay(app, bootstrap, topics, partitions=PARTITIONS).run(
            asyncio.Event(), idle_exit_s=2.0))
        return stats.events_per_s
    finally:
        app.close()


def project(url: str, bootstrap: str, topics: Topics, total: int, processes: int) -> float:
    """`processes` projectors in one new group consume the topic into the live
    schema: events per second from the first batch any of them received to the
    last commit of any (the same monotonic clock in every process)."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    metrics = in_processes(projector_process, processes, url, bootstrap, topics.prefix, group,
                           total)
    with psycopg.connect(url, autocommit=True) as conn:
        stored = Store(conn, LIVE_SCHEMA).event_count()
    applied = sum(m.applied for m in metrics)
    if applied != total or stored != total:
        raise SystemExit(f"projectors applied {applied}, stored {stored}, of {total}")
    first = min(m.first_batch_at for m in metrics if m.applied)
    return applied / (max(m.last_commit_at for m in metrics) - first)


def projector_process(url: str, bootstrap: str, prefix: str, group: str, total: int, n: int,
                      results: Any) -> None:
    tune_gc()  # as `settlement project` does
    with psycopg.connect(url, autocommit=True) as conn, \
            psycopg.connect(url, autocommit=True) as probe:
        projector = Projector(conn, bootstrap, Topics(prefix), group_id=group,
                              client_id=f"bench-projector-{n}")

        async def run() -> Any:
            # Stopped once the group has projected every event (timed from the first
            # batch to the last commit, so the stop's moment does not count), or
            # else when idle this long after its last record: the other members'
            # rebalances (a join waits about half the session timeout) must not end
            # it early.
            stop = asyncio.Event()
            running = asyncio.ensure_future(projector.run(stop, idle_exit_s=5.0))
            while not running.done():
                await asyncio.wait({running}, timeout=DONE_POLL_S)
                if await asyncio.to_thread(projected, probe) >= total:
                    stop.set()
            return await running

        results.put(asyncio.run(run()))


def projected(conn: psycopg.Connection[Any]) -> int:
    """The events in the live projections (0 before the projector made them)."""
    try:
        return Store(conn, LIVE_SCHEMA).event_count()
    except (psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedTable):
        return 0


# Latency ------------------------------------------------------------------------------


def steady_records(count: int) -> Iterator[dict[str, Any]]:
    """`count` marketplace records, jobs interleaved (each job's own in order)."""
    active = 20 * max(1, count // 400)
    jobs = [iter(job_events(n)) for n in range(100_000, 100_000 + active)]
    next_job = 100_000 + active
    sent = 0
    while sent < count:
        for n, events in enumerate(jobs):
            event = next(events, None)
            if event is None:
                jobs[n] = iter(job_events(next_job))
                next_job += 1
                event = next(jobs[n])
            yield event
            sent += 1
            if sent == count:
                return


def service(settings: Settings, bootstrap: str, prefix: str, log: Path,
            args: tuple[str, ...], name: str) -> subprocess.Popen[bytes]:
    """`settlement <args>` as a process of its own, output to `log`; its PostgreSQL
    connections carry `name` as their application name (libpq's PGAPPNAME)."""
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": str(settings.database_url),
           "SETTLEMENT_KAFKA_BOOTSTRAP": bootstrap, "SETTLEMENT_TOPIC_PREFIX": prefix,
           "PGAPPNAME": name}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "settlement.cli", *args],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


async def offer_load(bootstrap: str, topic: str, records: list[dict[str, Any]], rate: float,
                     published: dict[str, float]) -> None:
    """Publish `records` at `rate` per second, noting each one's publication time (when
    it is handed to the producer). Every `TICK_S` the records due by then are handed
    over: a sleep per record cost the load generator twice the CPU (its event loop
    woke 2,000 times a second, on the two cores the pipeline under test runs on)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=False, linger_ms=5)
    # Serialised beforehand: a marketplace service does that on its own machine.
    encoded = [(record["id"], record["data"]["job_id"].encode(), orjson.dumps(record))
               for record in records]
    await producer.start()
    try:
        started, sent = time.perf_counter(), 0
        while sent < len(encoded):
            due = min(len(encoded), int((time.perf_counter() - started) * rate) + 1)
            for record_id, key, value in encoded[sent:due]:
                published[record_id] = time.perf_counter()
                await producer.send(topic, key=key, value=value)
            sent = due
            if sent < len(encoded):
                await asyncio.sleep(TICK_S)
        await producer.flush()
    finally:
        await producer.stop()


async def watch(conn: psycopg.AsyncConnection[Any], expect: set[str],
                visible: dict[str, float], deadline: float) -> None:
    """Note when the last settlement event of each record becomes visible. Batches
    commit out of position order (partitions move at their own pace), so every
    position above the highest one below which all were seen is read again."""
    floor, seen = 0, set[int]()
    while not expect <= visible.keys():
        if time.perf_counter() > deadline:
            raise SystemExit(f"only {len(expect & visible.keys())} of {len(expect)} "
                             "records became visible")
        try:
            # Only rows not seen yet come back (the probe's own cost stays small).
            cur = await conn.execute(
                "SELECT position, causation_id FROM projections.audit_log "
                "WHERE position > %s AND position <> ALL(%s)", (floor, list(seen)))
            rows = await cur.fetchall()
        except psycopg.errors.UndefinedTable:
            rows = []
        now = time.perf_counter()
        for position, causation_id in sorted(rows):
            if position not in seen:
                seen.add(position)
                visible[causation_id] = now
        while floor + 1 in seen:
            floor += 1
            seen.discard(floor)
        await asyncio.sleep(POLL_S)


async def measure_latency(url: str, bootstrap: str, topics: Topics, records: list[dict[str, Any]],
                          rate: float, services: dict[str, int],
                          drain: bool = False) -> tuple[list[tuple[float, float]], Cpu]:
    """(publication time from the load's start in s, latency in ms) of every record
    but a first (warm-up) one, by publication, and the CPU the pipeline's processes
    spent while the others were published; with `drain`, until the last of them was
    visible (a backlog: the CPU per record at the largest batches)."""
    published: dict[str, float] = {}
    visible: dict[str, float] = {}
    # The probe's connection: its backend is the benchmark's, left out of the CPU.
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        # A first record, waited for, so every service has joined and warmed up.
        warm_up, measured = records[:1], records[1:]
        watcher = asyncio.create_task(watch(conn, {warm_up[0]["id"]}, visible,
                                            time.perf_counter() + READY_TIMEOUT_S))
        await offer_load(bootstrap, topics.jobs, warm_up, rate, published)
        await watcher
        await asyncio.sleep(1.0)
        published.clear()
        probe = conn.info.backend_pid
        roots, missing = pipeline(services, bootstrap, probe)
        deadline = time.perf_counter() + len(measured) / rate + DRAIN_TIMEOUT_S
        watcher = asyncio.create_task(
            drained(conn, len(records), deadline) if drain
            else watch(conn, {r["id"] for r in measured}, visible, deadline))
        before, started = await asyncio.to_thread(cpu.Snapshot), time.perf_counter()
        by_second: dict[str, list[float]] = {name: [] for name in roots}
        sampler = asyncio.create_task(sample_each_second(before, roots, probe, by_second))
        await offer_load(bootstrap, topics.jobs, measured, rate, published)
        if drain:
            await watcher
        sampler.cancel()
        after, ended = await asyncio.to_thread(cpu.Snapshot), time.perf_counter()
        backends = await backend_names(conn) if "postgres" in roots else {}
        await watcher
    finally:
        await conn.close()
    seconds = {name: after.tree_s(pid, (probe,)) - before.tree_s(pid, (probe,))
               for name, pid in roots.items()}
    # PostgreSQL's share by the process its backends serve (their application name).
    by_client: dict[str, float] = {}
    for pid, client in backends.items():
        if pid != probe:
            by_client[client] = by_client.get(client, 0.0) + after.own_s(pid) - before.own_s(pid)
    used = Cpu(seconds, ended - started, len(measured), missing, by_client,
               "the backlog" if drain else "steady load", by_second)
    if drain:
        return [], used
    return sorted((at - started, (visible[key] - at) * 1000)
                  for key, at in published.items()), used


async def sample_each_second(first: cpu.Snapshot, roots: dict[str, int], probe: int,
                             shares: dict[str, list[float]]) -> None:
    """Each process's share of a core in each second, appended to `shares` until
    cancelled: whether a process's cost holds or climbs as the run goes on."""
    last = first
    while True:
        await asyncio.sleep(1.0)
        now = await asyncio.to_thread(cpu.Snapshot)
        for name, pid in roots.items():
            shares[name].append(now.tree_s(pid, (probe,)) - last.tree_s(pid, (probe,)))
        last = now


async def drained(conn: psycopg.AsyncConnection[Any], commands: int, deadline: float) -> None:
    """Wait until `commands` records are stored and every settlement event is in the
    projections. Counted, not watched record by record: with a backlog, most
    positions above the lowest unseen one are seen, and `watch`'s query of the
    positions not seen yet costs PostgreSQL more than the pipeline does."""
    while True:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM public.settlement_commands), "
            "(SELECT count(*) FROM public.settlement_events), "
            "(SELECT count(*) FROM projections.audit_log)")
        stored, events, in_projections = (await cur.fetchone()) or (0, 0, 0)
        if stored >= commands and in_projections >= events:
            return
        if time.perf_counter() > deadline:
            raise SystemExit(f"only {in_projections} of {events} events of {stored} of "
                             f"{commands} records projected")
        await asyncio.sleep(DRAIN_POLL_S)


async def backend_names(conn: psycopg.AsyncConnection[Any]) -> dict[int, str]:
    """The server's live backends: pid → application name, or the kind of process."""
    cur = await conn.execute("SELECT pid, coalesce(nullif(application_name, ''), backend_type) "
                             "FROM pg_stat_activity")
    return {pid: name for pid, name in await cur.fetchall()}


@dataclass(frozen=True)
class Cpu:
    """CPU seconds per process of the pipeline over the steady load."""

    seconds: dict[str, float]
    wall_s: float
    records: int
    missing: list[str]  # processes not on this machine (or not ours to read)
    postgres: dict[str, float]  # PostgreSQL's live backends' seconds, by whom they serve
    label: str = "steady load"
    by_second: dict[str, list[float]] = field(default_factory=dict)  # each whole second's

    @property
    def us_per_record(self) -> float:
        return sum(self.seconds.values()) * 1e6 / self.records

    def report(self) -> str:
        lines = [f"CPU of the pipeline over the {self.wall_s:.1f} s of {self.label} "
                 f"({self.records} records): {self.us_per_record:.0f} µs per record, "
                 f"{sum(self.seconds.values()) / self.wall_s:.0%} of a core"]
        lines += [f"  {name:<10} {s:7.2f} s  {s / self.wall_s:4.0%} of a core  "
                  f"{s * 1e6 / self.records:5.0f} µs/record"
                  for name, s in sorted(self.seconds.items(), key=lambda kv: -kv[1])]
        if self.postgres:
            rest = self.seconds.get("postgres", 0.0) - sum(self.postgres.values())
            shares = [*sorted(self.postgres.items(), key=lambda kv: -kv[1]),
                      ("postmaster, exited backends", rest)]
            lines.append("  postgres by whom its backends serve: " + ", ".join(
                f"{client} {s * 1e6 / self.records:.0f}" for client, s in shares if s > 0)
                + " µs/record")
        if any(self.by_second.values()):
            lines.append("  % of a core in each second:")
            lines += [f"    {name:<10} " + " ".join(f"{share:.0%}".rjust(4) for share in shares)
                      for name, shares in self.by_second.items()]
        if self.missing:
            lines.append(f"  not measured (not processes of this machine): "
                         f"{', '.join(self.missing)}")
        return "\n".join(lines)


def pipeline(services: dict[str, int], bootstrap: str,
             backend: int) -> tuple[dict[str, int], list[str]]:
    """The processes whose CPU counts, by name (the services', the broker, the
    PostgreSQL postmaster, whose children are the backends), and those not found."""
    roots, missing = dict(services), []
    broker_pid = cpu.listener(bootstrap)
    if broker_pid is None:
        missing.append("broker")
    else:
        roots["broker"] = broker_pid
    postmaster = cpu.parent(backend) if cpu.comm(backend) == "postgres" else None
    if postmaster is None or cpu.comm(postmaster) != "postgres":
        missing.append("postgres")
    else:
        roots["postgres"] = postmaster
    return roots, missing


def latency(server: str, settings: Settings, bootstrap: str, rate: float, count: int,
            logs: Path, consumers: int,
            drain: bool = False) -> tuple[list[tuple[float, float]], Cpu]:
    """`count` records offered at `rate` to the pipeline's processes on a fresh
    database and topics (`measure_latency`)."""
    name = f"bench_e_{uuid.uuid4().hex[:8]}"
    url = create_database(server, name)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    topics = Topics(prefix)
    asyncio.run(ensure_topics(bootstrap, topics.all, partitions=PARTITIONS))
    own = Settings(database_url=url, kafka_bootstrap=bootstrap, state_dir=settings.state_dir)
    records = list(steady_records(count))
    # The children `settlement run` starts for these three parts (`service.parts`).
    # Groups of their own: on a shared broker, members of the default groups (a
    # service running there) must not take part in this run's rebalances.
    groups = {"ingest": ("--group", f"{name}-ingest"), "project": ("--group", f"{name}-project")}
    running = {part.name: service(own, bootstrap, prefix, logs / f"{part.name}.log",
                                  (*part.args, *groups.get(part.args[0], ())), part.name)
               for part in parts(1.0, PARTITIONS, consumers)
               if part.args[0] in ("ingest", "relay", "project")}
    try:
        return asyncio.run(measure_latency(url, bootstrap, topics, records, rate,
                                           {n: p.pid for n, p in running.items()}, drain))
    except BaseException:
        for log in sorted(logs.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print(f"--- {log.stem} (last lines)", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        for process in running.values():
            process.terminate()
        for process in running.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        drop_database(server, name)


def settle(server: str, name: str) -> None:
    """Drop the throughput run's database and flush the server's dirty pages, so the
    latency run does not share the server with its checkpoint and autovacuum."""
    drop_database(server, name)
    try:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error:  # not a superuser (an external server): carry on
        pass
    time.sleep(1.0)


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5_000,
                        help="task jobs for the throughput run, 20 settlement events each")
    parser.add_argument("--rate", type=float, default=2_000.0,
                        help="marketplace records per second offered in the latency run")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="how long the load is offered in the latency run")
    parser.add_argument("--consumers", type=int, default=default_consumers(PARTITIONS),
                        help="projector processes in the group, and input consumers and "
                             "projectors in the latency run (default: as `settlement run` "
                             "starts them, one per core)")
    parser.add_argument("--backlog", type=int, default=30_000,
                        help="records handed to a fresh pipeline at once after the latency "
                             "run, to measure the CPU per record at the largest batches "
                             "(0: skip)")
    args = parser.parse_args()
    print(describe(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = Settings.from_env()
        settings = Settings(database_url=env.database_url, kafka_bootstrap=env.kafka_bootstrap,
                            state_dir=Path(tmp))
        with database(settings) as server, kafka(settings) as bootstrap:
            suffix = uuid.uuid4().hex[:8]
            url = create_database(server, f"bench_p_{suffix}")
            started = time.perf_counter()
            total = store_jobs(url, settings, args.jobs)
            print(f"stored {total} settlement events for {args.jobs} jobs in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            read, base = baseline(url, settings)
            print(f"baseline notification log read: {base:,.0f} events/s ({read} events)",
                  flush=True)
            topics = Topics(f"bench{suffix[:6]}.")
            asyncio.run(ensure_topics(bootstrap, [topics.events], partitions=PARTITIONS))
            relayed = relay(url, settings, bootstrap, topics)
            print(f"relay: {relayed:,.0f} events/s", flush=True)
            rate = project(url, bootstrap, topics, total, args.consumers)
            print(f"projector group of {args.consumers} process(es): {rate:,.0f} events/s",
                  flush=True)
            if args.consumers != 1:
                # The same topic into a database of its own, by one process.
                alone = create_database(server, f"bench_q_{suffix}")
                single = project(alone, bootstrap, topics, total, 1)
                print(f"one projector process alone: {single:,.0f} events/s", flush=True)
                drop_database(server, f"bench_q_{suffix}")
            settle(server, f"bench_p_{suffix}")
            timed, used = latency(server, settings, bootstrap, args.rate,
                                  1 + int(args.rate * args.seconds), Path(tmp), args.consumers)
            lat = sorted(ms for _, ms in timed)
            p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
            print(f"end to end at {args.rate:,.0f} records/s for {args.seconds:g} s: "
                  f"{len(lat)} records, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                  f"max {lat[-1]:.1f} ms, mean {statistics.fmean(lat):.1f} ms", flush=True)
            print(by_second(timed), flush=True)
            print(used.report(), flush=True)
            floor = None
            if args.backlog:
                # The same pipeline handed a backlog at once: every stage reads, decides and
                # writes the largest batches it takes, so this is the CPU per record that
                # batching alone cannot go below.
                _, floor = latency(server, settings, bootstrap, BACKLOG_RATE, 1 + args.backlog,
                                   Path(tmp), args.consumers, drain=True)
                print(f"backlog of {args.backlog:,} records handed over at once, until the "
                      f"last is visible (the floor of batching):", flush=True)
                print(floor.report(), flush=True)
    backlog = "" if floor is None else f" cpu_us_per_record_backlog={floor.us_per_record:.0f}"
    print(f"RESULT projector_events_per_s={rate:.0f} baseline_events_per_s={base:.0f} "
          f"e2e_p50_ms={p50:.1f} e2e_p99_ms={p99:.1f} "
          f"cpu_us_per_record={used.us_per_record:.0f}{backlog}")


def by_second(timed: list[tuple[float, float]]) -> str:
    """The p50 and p99 of the records published in each second of the load: whether
    the latency holds or climbs as the run goes on (the embedded broker's cost grows
    with each topic's history, `bench/broker.py`)."""
    seconds: dict[int, list[float]] = {}
    for at, ms in timed:
        seconds.setdefault(int(at), []).append(ms)
    cells = []
    for _, values in sorted(seconds.items()):
        values.sort()
        cells.append(f"{percentile(values, 0.50):.0f}/{percentile(values, 0.99):.0f}")
    return "p50/p99 ms by second of the load: " + " ".join(cells)


if __name__ == "__main__":
    main()
