"""Chaos scenarios (SPEC §3.5, issue 11): real processes, real faults, real PostgreSQL.

By default each scenario runs at a smoke size (part of `make test`); `make chaos` sets
PLATFORMDB_CHAOS=full and runs them at the sizes the reliability figures are quoted for.
Each scenario prints one line and writes a JSON report (tests/chaos/report.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import report

ROOT = Path(__file__).resolve().parents[2]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if report.LINES["chaos"]:
        terminalreporter.section("chaos scenarios")
        for line in report.LINES["chaos"]:
            terminalreporter.write_line(line)


class Proc:
    """A `platformdb …` subprocess with its output in a log file."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str]):
        self.name = name
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "platformdb.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.expected_exit = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no release, no goodbye."""
        self.expected_exit = True
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._out.close()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        self.expected_exit = True
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "PLATFORMDB_WORKER_APP"))}
    env.pop("DATABASE_URL", None)
    env.update(extra)
    return env


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start `platformdb <args>` subprocesses; whatever is left is killed at the end."""
    started: list[Proc] = []

    def start(name: str, args: list[str], **env: str) -> Proc:
        p = Proc(name, args, tmp_path / f"{name}.log", base_env(**env))
        started.append(p)
        return p

    yield start
    for p in started:
        if p.alive():
            p.proc.kill()
            p.proc.wait(10)


def wait_for(what: str, check: Callable[[], bool], timeout: float, procs: list[Proc] | None = None) -> float:
    """Poll until `check()` holds; returns the seconds it took. A guard against hanging
    forever, not a timing assertion: on expiry it fails with the processes' logs."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in procs or [])
    raise AssertionError(f"gave up waiting for: {what}\n{logs}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]
