"""What every target's load lock shares: waiting for it, and the one message
that says another run holds it."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_loop(timeout: float, attempt: Callable[[], bool], poll: float = 0.2,
              on_wait: Callable[[], None] | None = None) -> bool:
    """Call `attempt` until it returns True or `timeout` seconds passed;
    `on_wait` once when the first attempt fails (to say what is waited for)."""
    deadline = time.monotonic() + timeout
    delay = min(poll, 0.05)
    while True:
        if attempt():
            return True
        if time.monotonic() >= deadline:
            return False
        if on_wait is not None:
            on_wait()
            on_wait = None
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, poll)


def busy_message(pipeline: str, table: str, describe: str, schema: str, waited: float) -> str:
    return (f"{pipeline}.{table}: another lakeshift run is loading this table into {describe} (schema {schema}); "
            f"waited {waited:g}s for it to finish. Try again when it is done.")
