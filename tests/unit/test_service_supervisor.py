"""`settlement run`'s supervisor on real (tiny) child processes: a child that dies
is restarted, one that keeps dying stops everything, and a stop reaches every
child once."""

from __future__ import annotations

import os
import threading

import pytest

from settlement.service import supervisor as service
from settlement.service.supervisor import Child, Part, Supervisor, parts


@pytest.fixture(autouse=True)
def fast_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "RESTART_DELAY_S", 0.01)
    monkeypatch.setattr(service, "POLL_S", 0.02)


def test_the_children_are_the_five_parts_of_the_service() -> None:
    assert [(p.name, p.args[0]) for p in parts(5.0, 4)] == [
        ("ingest", "ingest"), ("relay", "relay"), ("project", "project"),
        ("timers", "timers"), ("api", "api")]


def test_with_two_consumers_each_group_gets_two_processes_with_their_own_client_ids() -> None:
    found = {p.name: p.args for p in parts(5.0, 4, consumers=2)}
    assert list(found) == ["ingest-1", "ingest-2", "relay", "project-1", "project-2",
                           "timers", "api"]
    assert found["ingest-2"] == ("ingest", "--client", "settlement-ingest-2", "--partitions", "4")
    assert found["project-1"][:3] == ("project", "--client", "settlement-projector-1")


def test_one_consumer_process_per_core_at_most_one_per_partition(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert service.default_consumers(4) == 4
    assert service.default_consumers(1) == 1
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert service.default_consumers(4) == 1


def test_a_child_that_keeps_dying_stops_the_tree() -> None:
    # `settlement --version`-like: argparse exits at once (status 2: no command).
    dying = Child(Part("dying", ()), dict(os.environ))
    supervisor = Supervisor([dying])
    supervisor.start()
    done = threading.Event()
    supervisor.watch(done)
    assert supervisor.failed is not None and "dying exited" in supervisor.failed
    assert len(dying.exits) == service.RESTARTS_MAX + 1
    assert supervisor.stop() == {"dying": 2}


def test_stop_terminates_every_running_child() -> None:
    long_running = Child(Part("idle", ("timers", "loop", "--interval", "60")),
                         {**os.environ, "SETTLEMENT_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    supervisor = Supervisor([long_running])
    supervisor.start()
    codes = supervisor.stop()
    assert codes["idle"] is not None and long_running.poll() is not None
