"""`settlement run`'s supervisor on real (tiny) child processes: a child that dies
is restarted, one that keeps dying is restarted after growing delays (never
given up), and a stop reaches every child once."""

from __future__ import annotations

import os
import threading
import time

import pytest
from structlog.testing import capture_logs

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


def test_restart_delays_double_past_the_restarts_allowed_up_to_a_cap_jittered() -> None:
    first = service.RESTART_DELAY_S
    assert [service.restart_delay_s(n) for n in range(1, service.RESTARTS_MAX + 1)] == \
        [first] * service.RESTARTS_MAX
    for extra in range(1, 12):
        delay = min(service.RESTART_DELAY_MAX_S, first * 2 ** extra)
        drawn = [service.restart_delay_s(service.RESTARTS_MAX + extra) for _ in range(50)]
        assert all(delay / 2 <= d <= delay for d in drawn)
        assert len(set(drawn)) > 1  # jittered
    assert service.restart_delay_s(1000) <= service.RESTART_DELAY_MAX_S


def test_a_child_that_keeps_dying_is_restarted_later_and_later_and_never_given_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A dependency away for long makes a child die again and again: the tree backs
    off (and says so, in its log and its heartbeat's detail), it does not stop."""
    monkeypatch.setattr(service, "RESTART_DELAY_MAX_S", 0.16)
    # `settlement --version`-like: argparse exits at once (status 2: no command).
    dying = Child(Part("dying", ()), dict(os.environ))
    supervisor = Supervisor([dying])
    done = threading.Event()
    watcher = threading.Thread(target=supervisor.watch, args=(done,))
    states, delays = [], []
    with capture_logs() as logs:
        supervisor.start()
        watcher.start()
        deadline = time.monotonic() + 60
        while dying.restarts < service.RESTARTS_MAX + 4 and time.monotonic() < deadline:
            states.append(supervisor.state()["children"]["dying"]["status"])
            delays.append(dying.restart_delay_s)
            time.sleep(0.005)
        still_watching = watcher.is_alive()
        done.set()
        watcher.join()
    assert still_watching and dying.restarts >= service.RESTARTS_MAX + 4
    assert "backing_off" in states and max(delays) > service.RESTART_DELAY_S
    backing_off = [e for e in logs if e["event"] == "run.child_backing_off"]
    assert backing_off and backing_off[0]["child"] == "dying"
    assert supervisor.stop()["dying"] is not None


def test_stop_terminates_every_running_child() -> None:
    long_running = Child(Part("idle", ("timers", "loop", "--interval", "60")),
                         {**os.environ, "SETTLEMENT_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    supervisor = Supervisor([long_running])
    supervisor.start()
    codes = supervisor.stop()
    assert codes["idle"] is not None and long_running.poll() is not None
