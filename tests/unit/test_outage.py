"""Living through an outage (`settlement.infra.outage`): which failures are a
dependency away, the backoff's bounds, an outage logged once with its length,
and a wait that a stop ends at once."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, UnknownError
from eventsourcing import persistence
from structlog.testing import capture_logs

from settlement.infra.liveness import STALLED_EXIT_CODE, Liveness
from settlement.infra.logging import get_logger
from settlement.infra.outage import (
    BROKER,
    DATABASE,
    Backoff,
    BrokerUnavailable,
    Outages,
    away,
    unless_stopped,
)


def _raised_from(error: BaseException, cause: BaseException) -> BaseException:
    try:
        raise error from cause
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(("error", "dependency"), [
    (psycopg.OperationalError("server closed the connection"), DATABASE),
    (psycopg.errors.QueryCanceled("statement timeout"), DATABASE),
    (persistence.OperationalError("couldn't get a connection after 1.00 sec"), DATABASE),
    (_raised_from(RuntimeError("wrapped"), psycopg.InterfaceError("closed")), DATABASE),
    (KafkaConnectionError("Unable to bootstrap"), BROKER),
    (KafkaTimeoutError(), BROKER),
    (BrokerUnavailable("no answer"), BROKER),
    (UnknownError(), None),  # not retriable: a defect or a lost topic, not an outage
    (persistence.IntegrityError("duplicate key"), None),
    (KeyError("x"), None),
])
def test_what_says_a_dependency_is_away(error: BaseException, dependency: str | None) -> None:
    assert away(error) == dependency


def test_an_error_raised_while_handling_an_outage_is_a_defect_not_an_outage() -> None:
    try:
        try:
            raise psycopg.OperationalError("gone")
        except psycopg.OperationalError:
            raise KeyError("a bug in the handler")  # noqa: B904 - the point of the test
    except KeyError as error:
        assert away(error) is None


def test_backoff_doubles_from_its_first_delay_up_to_its_cap_jittered() -> None:
    backoff = Backoff(first_s=0.5, max_s=5.0)
    delays = [backoff.next_delay_s() for _ in range(10)]
    caps = [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]
    assert all(cap / 2 <= delay <= cap for delay, cap in zip(delays, caps, strict=True))
    backoff.reset()
    assert backoff.next_delay_s() <= 0.5


def test_an_outage_is_logged_once_when_it_begins_and_once_with_its_length_when_it_ends(
) -> None:
    async def run() -> bool:
        outages = Outages(get_logger(), "ingest")
        attempts = iter([psycopg.OperationalError("still down"), None])

        async def probe() -> None:
            failure = next(attempts)
            if failure is not None:
                raise failure

        outages.began(DATABASE, psycopg.OperationalError("gone"))
        outages.began(DATABASE, psycopg.OperationalError("gone again"))
        return await outages.wait_out(DATABASE, psycopg.OperationalError("and again"), probe,
                                      asyncio.Event())

    with capture_logs() as logs:
        assert asyncio.run(run())
    assert [e["event"] for e in logs] == ["ingest.database_unavailable", "ingest.database_back"]
    assert logs[1]["duration_s"] >= 0


def test_a_stop_ends_the_wait_for_a_dependency_and_cancels_work_at_once() -> None:
    async def run() -> tuple[bool, tuple[bool, object], float]:
        stop = asyncio.Event()
        outages = Outages(get_logger(), "relay")

        async def never() -> None:
            raise BrokerUnavailable("paused")

        asyncio.get_running_loop().call_later(0.1, stop.set)
        started = time.monotonic()
        waited = await outages.wait_out(BROKER, BrokerUnavailable("paused"), never, stop)
        cut = await unless_stopped(asyncio.sleep(60), stop)
        return waited, cut, time.monotonic() - started

    with capture_logs():
        waited, cut, seconds = asyncio.run(run())
    assert waited is False and cut == (False, None) and seconds < 2


def _watched(stall_s: float, exits: list[int]) -> Liveness:
    # A database nobody listens on: every beat is skipped, the watchdog still runs.
    return Liveness("postgresql://nobody@127.0.0.1:1/nothing", "ingest-test", get_logger(),
                    "ingest", stall_s=stall_s, beat_interval_s=0.05, exit=exits.append)


def test_the_watchdog_ends_a_process_whose_loop_stopped_turning() -> None:
    exits: list[int] = []
    with capture_logs() as logs, _watched(0.3, exits) as liveness:
        for _ in range(4):  # turning: no exit
            liveness.turned()
            time.sleep(0.1)
        assert exits == []
        time.sleep(0.6)  # stuck
    assert exits and exits[0] == STALLED_EXIT_CODE
    assert any(e["event"] == "ingest.stalled" for e in logs)


def test_the_watchdog_spares_a_process_waiting_out_an_outage_but_not_one_stuck_with_work(
) -> None:
    waiting: list[int] = []
    with capture_logs(), _watched(0.3, waiting) as liveness:
        for _ in range(8):
            liveness.waiting(DATABASE)
            time.sleep(0.1)
    assert waiting == []
    stuck: list[int] = []
    with capture_logs(), _watched(0.3, stuck) as liveness:
        liveness.lag = 5
        for _ in range(8):  # polls answered, but nothing stored
            liveness.turned()
            time.sleep(0.1)
    assert stuck and stuck[0] == STALLED_EXIT_CODE
