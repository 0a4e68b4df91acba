"""`settlement run` stopped as an operator stops it (issue 22): Ctrl-C under load,
that is SIGINT to the terminal's foreground process group, ends every child with
status 0 within 10 s and prints no traceback (the embedded broker must not die
under the children still stopping). While it ran, every part wrote its heartbeat,
and the supervisor's says how each child is."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from settlement.infra import heartbeats
from settlement.infra.postgres import embedded_postgres
from settlement.infra.topics import Topics
from settlement.service.scenario import marketplace_day
from support.ingest import publish
from support.processes import wait_for

START_S = 90.0
STOP_S = 10.0
PARTS = {"settlement-ingest-1", "settlement-ingest-2", "relay", "settlement-projector-1",
         "settlement-projector-2", "timers", "supervisor"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def named(path: Path, event: str) -> list[dict[str, Any]]:
    return [e for e in log_events(path) if e.get("event") == event]


def parts_beating(url: str) -> dict[str, heartbeats.Heartbeat]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {beat.part: beat for beat in heartbeats.read_all(conn)}


def test_ctrl_c_under_load_stops_every_child_with_status_0_and_no_traceback(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEMENT_")}
    env |= {"SETTLEMENT_API_ADDR": f"127.0.0.1:{free_port()}",
            "SETTLEMENT_API_TOKENS": "clean-stop-token:auditor"}
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        # A process group of its own, as a shell gives a foreground job.
        process = subprocess.Popen(
            [sys.executable, "-m", "settlement.cli", "run", "--consumers", "2",
             "--timer-interval", "2"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    loading = threading.Event()
    try:
        wait_for(lambda: named(log_path, "run.started"), "run.started", START_S)
        bootstrap = str(named(log_path, "run.started")[0]["kafka"])
        wait_for(lambda: len(named(log_path, "ingest.assigned")) >= 2 and
                 named(log_path, "projector.assigned"), "the consumers' assignments", START_S)
        loading.set()

        def load() -> None:
            n = 0
            while loading.is_set():
                try:
                    publish(bootstrap, Topics(""), marketplace_day(
                        datetime(2026, 11, 26, 9, tzinfo=UTC), f"stop{n}"))
                except Exception:  # the broker went away with the service
                    return
                n += 1

        publisher = threading.Thread(target=load, daemon=True)
        publisher.start()
        with embedded_postgres(tmp_path / ".settlement") as url:  # joined, not owned
            wait_for(lambda: PARTS <= parts_beating(url).keys(), "every part's heartbeat",
                     START_S)
            supervisor = parts_beating(url)["supervisor"].detail["children"]
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        status = process.wait(STOP_S + 10)
    finally:
        loading.clear()
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log_path.read_text(errors="replace")
    assert status == 0, text[-4000:]
    assert set(supervisor) == {"ingest-1", "ingest-2", "relay", "project-1", "project-2",
                               "timers", "api"}
    assert all(child["status"] == "running" for child in supervisor.values()), supervisor
    stopping = datetime.fromisoformat(named(log_path, "run.stopping")[0]["timestamp"])
    stopped = named(log_path, "run.children_stopped")[0]
    assert (datetime.fromisoformat(stopped["timestamp"]) - stopping).total_seconds() < STOP_S
    assert set(stopped["statuses"].values()) == {0}, stopped["statuses"]
    assert "Traceback" not in text and "Unclosed" not in text, text[-4000:]
