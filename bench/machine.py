"""The machine a benchmark runs on, printed as its first line: the same code
measured 1.6-1.9 times as fast on one machine of this kind as on another
(docs/benchmarks.md, "Machines"), so a figure is read beside its machine and its
same-run baseline, never against a figure from another machine."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def describe() -> str:
    """`machine: <CPU> (family F, model M), <n> CPUs, <g> GiB; Python <version> (<path>)`."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        cpu += f" (family {fields['cpu family']}, model {fields['model']})"
    try:
        memory = f", {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = ""
    return (f"machine: {cpu}, {os.cpu_count()} CPUs{memory}; "
            f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})")
