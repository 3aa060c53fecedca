"""Retries of transient MySQL errors with exponential back-off; anything that
fails the same way again (permission, syntax, unknown table) is raised at once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from lakeshift import redact
from lakeshift.errors import LakeshiftError, TransientSourceError
from lakeshift.source.errors import describe_error, is_transient

log = logging.getLogger("lakeshift.source")
T = TypeVar("T")

MAX_RETRY_DELAY = 60.0


def retry(
    fn: Callable[[], T],
    attempts: int = 3,
    delay: float = 5.0,
    *,
    max_delay: float = MAX_RETRY_DELAY,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "",
) -> T:
    """Call fn; on a transient error try again up to `attempts` more times,
    waiting delay, 2*delay, 4*delay ... (capped at max_delay). Anything not
    transient (permission, syntax, unknown table) is raised at once."""
    tries = 0
    while True:
        try:
            return fn()
        except BaseException as exc:  # noqa: BLE001 - connectorx panics are BaseException
            if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)) or not is_transient(exc):
                raise
            if tries >= attempts:
                if isinstance(exc, LakeshiftError):
                    if tries:  # same type (callers tell errors apart by it), the retries said
                        exc.args = (f"{exc} (giving up after {tries + 1} attempts)",)
                    raise
                raise TransientSourceError(redact.redact(
                    f"{what or 'MySQL'}: giving up after {tries + 1} attempts: {describe_error(exc)}")) from None
            wait = min(delay * (2 ** tries), max_delay)
            tries += 1
            reason = describe_error(exc)
            if what and reason.startswith(what + ": "):  # our own errors already name the table
                reason = reason[len(what) + 2:]
            log.warning("%s: transient error, retry %d/%d in %.1fs: %s", what or "MySQL", tries, attempts,
                        wait, reason)
            sleep(wait)
