"""Bounded polling: every wait in the tests has a number of attempts."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any


def wait_for(check: Callable[[], Any], what: str, attempts: int = 600, delay: float = 0.05,
             proc: subprocess.Popen[str] | None = None) -> Any:
    """Poll `check` until it returns something truthy (bounded); fail with `what`.
    With `proc`, fail early when the process ended first."""
    for _ in range(attempts):
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate(timeout=30)
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}\n{out}\n{err}")
        time.sleep(delay)
    raise AssertionError(f"gave up waiting for {what}")
