"""Kafka offsets committed for monitoring: at most once per interval, the latest
offsets, none lost, a failure logged and never raised (`infra.broker.OffsetCommits`).
The consumer here only records what it is asked to commit: this is the helper's
scheduling, the real broker's commits are exercised by the integration tests."""

from __future__ import annotations

import asyncio
from typing import Any

from settlement.infra.broker import OffsetCommits


class _Consumer:
    def __init__(self, fail: bool = False) -> None:
        self.commits: list[dict[str, int]] = []
        self.fail = fail
        self.begun = 0  # commits under way or done

    async def commit(self, offsets: dict[str, int]) -> None:
        self.begun += 1
        await asyncio.sleep(0.01)  # a request's round trip
        if self.fail:
            raise RuntimeError("the group is rebalancing")
        self.commits.append(dict(offsets))


class _Log:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.warnings.append((event, fields))


def test_offsets_noted_within_an_interval_are_committed_once_the_latest_winning() -> None:
    async def run() -> list[dict[str, int]]:
        consumer = _Consumer()
        commits = OffsetCommits(consumer, _Log(), "offset_commit_failed", interval_s=0.2)
        commits.note({"p0": 10})
        commits.note({"p0": 12, "p1": 5})
        commits.note({"p1": 7})
        await asyncio.sleep(0.1)
        assert consumer.commits == []  # not before the interval
        await asyncio.sleep(0.3)
        return consumer.commits

    assert asyncio.run(run()) == [{"p0": 12, "p1": 7}]


def test_flush_commits_at_once_and_offsets_noted_during_a_commit_are_not_lost() -> None:
    async def run() -> list[dict[str, int]]:
        consumer = _Consumer()
        commits = OffsetCommits(consumer, _Log(), "offset_commit_failed", interval_s=0.05)
        commits.note({"p0": 1})
        async with asyncio.timeout(5):
            while not consumer.begun:  # the commit of p0 = 1 is under way
                await asyncio.sleep(0.001)
            commits.note({"p0": 2})
            while len(consumer.commits) < 2:  # then p0 = 2, with no note after
                await asyncio.sleep(0.01)
        commits.note({"p0": 3})
        await commits.flush()  # at once, not an interval later
        return consumer.commits

    started = asyncio.run(run())
    assert started == [{"p0": 1}, {"p0": 2}, {"p0": 3}]


def test_a_failed_commit_is_logged_not_raised_and_the_next_one_still_happens() -> None:
    async def run() -> tuple[_Consumer, _Log]:
        consumer, log = _Consumer(fail=True), _Log()
        commits = OffsetCommits(consumer, log, "offset_commit_failed", interval_s=0.01)
        commits.note({"p0": 1})
        await commits.flush()
        consumer.fail = False
        commits.note({"p0": 2})
        await commits.flush()
        return consumer, log

    consumer, log = asyncio.run(run())
    assert [event for event, _ in log.warnings] == ["offset_commit_failed"]
    assert consumer.commits == [{"p0": 2}]


def test_flush_with_nothing_noted_returns_at_once() -> None:
    async def run() -> None:
        commits = OffsetCommits(_Consumer(), _Log(), "offset_commit_failed")
        async with asyncio.timeout(1):
            await commits.flush()

    asyncio.run(run())
