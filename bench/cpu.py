"""CPU seconds of a set of local processes and their descendants, from /proc (Linux).

A process's CPU is its own `utime + stime` plus its children's: those that exited
and were reaped (its `cutime + cstime`) and those alive (each their own tree, read
from their /proc/PID/stat). So a PostgreSQL backend that exits between two samples
counts through the postmaster's `cutime`/`cstime`, a live one through its own
times. The difference of two samples is what each tree spent between them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_LISTEN = "0A"  # the TCP state LISTEN in /proc/net/tcp


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, own ticks, reaped children's ticks); None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: fields after its ')'.
    fields = text[text.rindex(")") + 2:].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return int(fields[1]), utime + stime, cutime + cstime


class Snapshot:
    """Every process's times at one moment."""

    def __init__(self) -> None:
        self._stats: dict[int, tuple[int, int, int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
                self._stats[int(entry.name)] = found
        self._children: dict[int, list[int]] = {}
        for pid, (parent_pid, _, _) in self._stats.items():
            self._children.setdefault(parent_pid, []).append(pid)

    def children(self, pid: int) -> list[int]:
        return list(self._children.get(pid, ()))

    def own_s(self, pid: int) -> float:
        """CPU seconds of the process alone (0 if it does not exist)."""
        found = self._stats.get(pid)
        return found[1] / TICKS_PER_S if found is not None else 0.0

    def tree_s(self, pid: int, skip: Iterable[int] = ()) -> float:
        """CPU seconds of the process and its descendants, alive or reaped, leaving
        out the live ones in `skip` (a skipped process that exits is counted in its
        parent's reaped time)."""
        skipped = set(skip)

        def ticks(pid: int) -> int:
            if pid in skipped or pid not in self._stats:
                return 0
            _, own, reaped = self._stats[pid]
            return own + reaped + sum(ticks(child) for child in self._children.get(pid, ()))

        return ticks(pid) / TICKS_PER_S


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def parent(pid: int) -> int | None:
    found = _stat(pid)
    return found[0] if found is not None else None


def listener(bootstrap: str) -> int | None:
    """The pid of the process of this machine listening on the port of `bootstrap`'s
    first address if that address is a loopback one; None otherwise, or if that
    process is not ours to look at."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host.strip("[]")))
    except (OSError, ValueError):
        return None
    if not port.isdigit() or not address.is_loopback:
        return None
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == int(port):
                inodes.add(f"socket:[{fields[9]}]")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                if os.readlink(fd.path) in inodes:
                    return int(entry.name)
        except OSError:  # gone, or not ours to look at
            continue
    return None
