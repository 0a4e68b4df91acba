"""How long the pipeline's stages wait to gather a batch: the settings, and the
relay's follower lingering after a small batch only."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from settlement.infra.config import BATCH_WAIT_MS_MAX, Batching, ConfigError, Settings
from settlement.relay.follower import SMALL_BATCH_DIVISOR, Follower
from tests.support.processes import wait_for

LINGER_S = 1.0


def test_the_waits_default_and_are_read_from_the_environment() -> None:
    assert Settings.from_env({}).batching == Batching()
    batching = Settings.from_env({"SETTLEMENT_FETCH_WAIT_MS": "20",
                                  "SETTLEMENT_RELAY_LINGER_MS": "0"}).batching
    assert batching == Batching(fetch_wait_ms=20, relay_linger_ms=0)


@pytest.mark.parametrize("value", ["-1", "2.5", "20ms", str(BATCH_WAIT_MS_MAX + 1)])
@pytest.mark.parametrize("name", ["SETTLEMENT_FETCH_WAIT_MS", "SETTLEMENT_RELAY_LINGER_MS"])
def test_a_bad_wait_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_a_wait_out_of_bounds_is_refused_in_code_too() -> None:
    with pytest.raises(ConfigError, match="fetch_wait_ms"):
        Batching(fetch_wait_ms=BATCH_WAIT_MS_MAX + 1)


class _Subscription:
    """The notification log's subscription as the follower uses it: notifications
    as the test hands them over."""

    def __init__(self) -> None:
        self.fed: queue.Queue[Any] = queue.Queue()
        self._stopped = threading.Event()

    def __enter__(self) -> _Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        while not self._stopped.is_set():
            try:
                yield self.fed.get(timeout=0.05)
            except queue.Empty:
                continue

    def stop(self) -> None:
        self._stopped.set()


class _Recorder:
    def __init__(self) -> None:
        self.subscription = _Subscription()

    def subscribe(self, gt: int) -> _Subscription:
        return self.subscription


@pytest.fixture
def follower() -> Iterator[tuple[Follower, _Subscription, queue.Queue[Any]]]:
    recorder = _Recorder()
    following = Follower(recorder, 0, queue_max=100)  # type: ignore[arg-type]
    try:
        yield following, recorder.subscription, following._queue
    finally:
        following.close()


def test_a_small_batch_takes_what_arrives_while_it_lingers(
        follower: tuple[Follower, _Subscription, queue.Queue[Any]]) -> None:
    following, subscription, pumped = follower
    subscription.fed.put(1)
    taken: list[list[Any]] = []
    taker = threading.Thread(target=lambda: taken.append(
        asyncio.run(following.next_batch(40, 5.0, LINGER_S))))
    taker.start()
    wait_for(lambda: subscription.fed.empty() and pumped.empty(), "the first taken")
    for n in (2, 3):
        subscription.fed.put(n)
    taker.join()
    assert taken == [[1, 2, 3]]


def test_without_a_linger_a_batch_is_what_had_arrived(
        follower: tuple[Follower, _Subscription, queue.Queue[Any]]) -> None:
    following, subscription, pumped = follower
    subscription.fed.put(1)
    wait_for(lambda: pumped.qsize() == 1, "the first pumped")
    assert asyncio.run(following.next_batch(40, 5.0, 0.0)) == [1]


def test_a_batch_that_is_not_small_goes_without_waiting(
        follower: tuple[Follower, _Subscription, queue.Queue[Any]]) -> None:
    following, subscription, pumped = follower
    size_max = 40
    for n in range(size_max // SMALL_BATCH_DIVISOR):
        subscription.fed.put(n)
    wait_for(lambda: pumped.qsize() == size_max // SMALL_BATCH_DIVISOR, "a batch pumped")
    started = time.monotonic()
    batch = asyncio.run(following.next_batch(size_max, 5.0, 10.0))
    assert batch == list(range(size_max // SMALL_BATCH_DIVISOR))
    assert time.monotonic() - started < 5.0  # not the 10 s linger
