"""Long-running helper processes for integration tests: loopback ports, logs in tmp, bounded waits, sure cleanup."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The console scripts (prefect, enumwatch) installed beside the interpreter running the tests.
VENV_BIN = Path(sys.executable).parent


def free_port() -> str:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a JSON document from a loopback URL."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback test servers only
        return json.loads(resp.read().decode("utf-8"))


def send_json(url: str, method: str, body: Any, timeout: float = 30.0, attempts: int = 4) -> Any:
    """POST/PATCH a JSON body to a loopback URL; the answer's JSON, or None when it has no body.

    A 503 (Prefect's server answers so while its SQLite database is busy) is tried again after a
    pause, as Prefect's own client does; any other error, or a fourth 503, raises.
    """
    data = json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback test servers only
                text = resp.read().decode("utf-8")
            return json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == attempts:
                raise
            time.sleep(2 * attempt)


class Background:
    """A command running in its own process group, its output in a log file; `stop` ends the whole group."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_dir: Path, cwd: Path | None = None):
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._fh = self.log.open("wb")
        # Own session: stopping it also stops what it started (a worker's executors, a flow run's JVM).
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.proc.poll() is None

    def tail(self, chars: int = 4000) -> str:
        """The end of the process's output, for failure messages."""
        self._fh.flush()
        return self.log.read_bytes()[-chars:].decode("utf-8", errors="replace")

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group may outlive its leader
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._fh.close()


def wait_for(
    check: Callable[[], Any], *, timeout: float, what: str, watch: Sequence[Background] = (), every: float = 1.0
) -> Any:
    """Call `check` until it returns something truthy; fail naming `what` after `timeout` s or if a watched process dies."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for bg in watch:
            if not bg.alive():
                raise AssertionError(f"{bg.name} exited ({bg.proc.returncode}) while waiting for {what}:\n{bg.tail()}")
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - not up yet
            last_error = exc
        time.sleep(every)
    logs = "\n".join(f"--- {bg.name} ---\n{bg.tail()}" for bg in watch)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})\n{logs}")
