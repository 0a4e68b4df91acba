"""Waiting on what a test can observe instead of for a fixed time: a CLI process's
output read as it comes, stopped (SIGTERM, as an operator stops it) once the
database shows what the test waits for, instead of after an idle period."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

POLL_S = 0.1
TIMEOUT_S = 120.0


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = TIMEOUT_S) -> Any:
    """Poll `condition` until it is true; its value."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_S)
    return value


class Watched:
    """A process started with stdout and stderr as text pipes, both drained by threads
    (a full pipe would stall it), so that a test can wait for a line of its log."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.process = process
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [threading.Thread(target=_drain, args=(stream, lines), daemon=True)
                         for stream, lines in ((process.stdout, self._out),
                                               (process.stderr, self._err))]
        for reader in self._readers:
            reader.start()

    @property
    def err(self) -> str:
        """stderr so far (the service's JSON log)."""
        return "".join(self._err)

    def wait_for(self, *texts: str, timeout_s: float = TIMEOUT_S) -> None:
        """Until the log shows each of `texts`, in this order (a text given twice: twice)."""

        def shown() -> bool:
            ended = self.process.poll() is not None
            if ended:
                for reader in self._readers:
                    reader.join()
            at, log = 0, self.err
            for text in texts:
                at = log.find(text, at)
                if at < 0:
                    assert not ended, (f"exited ({self.process.returncode}) before logging "
                                       f"{texts}:\n{log[-4000:]}")
                    return False
                at += len(text)
            return True

        wait_for(shown, f"{texts} in the log", timeout_s)

    def stop_when(self, condition: Callable[[], Any], timeout_s: float = TIMEOUT_S,
                  ) -> tuple[str, str]:
        """SIGTERM once `condition` holds (unless the process ended by itself before);
        then its whole stdout and stderr."""
        wait_for(lambda: self.process.poll() is not None or condition(), "the condition",
                 timeout_s)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.communicate(timeout_s)

    def communicate(self, timeout_s: float = TIMEOUT_S) -> tuple[str, str]:
        """Wait for the process to end; its whole stdout and stderr."""
        self.process.wait(timeout_s)
        for reader in self._readers:
            reader.join(timeout_s)
        return "".join(self._out), self.err


def _drain(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
    stream.close()
