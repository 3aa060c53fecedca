"""Time limits of a connectorx read, so that a run never hangs.

- statement_timeout: the server stops each read statement after this long
  (MariaDB `max_statement_time`, seconds; MySQL `max_execution_time`,
  milliseconds, read-only SELECTs), set for the session before the query:
  the query text stays as it is (connectorx also passes `SET STATEMENT
  max_statement_time=N FOR SELECT ...` and `/*+ MAX_EXECUTION_TIME(ms) */`
  through unchanged, tested, but a session variable needs no rewriting).
- stall_timeout: the parent gives up on the connectorx child when it sends
  nothing for this long (a dead socket, a server or proxy that stopped
  answering: cases the server's own limit cannot report). By default a
  little longer than statement_timeout, so a live server always answers first.
"""

from __future__ import annotations

import re

from lakeshift.config.models import MySQLSource

STALL_GRACE = 60.0  # seconds the default stall_timeout adds to statement_timeout
TIMEOUT_CODES = frozenset({1969, 3024})  # MariaDB max_statement_time / MySQL max_execution_time exceeded


def _version(text: str) -> tuple[int, int, int]:
    # MariaDB before 11 announces itself as '5.5.5-10.11.6-MariaDB' to old clients
    m = re.match(r"(?:5\.5\.5-)?(\d+)\.(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (0, 0, 0)


def is_mariadb(server_version: str) -> bool:
    return "mariadb" in server_version.lower()


def statement_limit_sql(server_version: str, seconds: float) -> list[str]:
    """Session statements that bound every later statement to `seconds` (none for 0,
    or for servers without such a variable: MariaDB < 10.1.1, MySQL < 5.7.8)."""
    if seconds <= 0:
        return []
    version = _version(server_version)
    if is_mariadb(server_version):
        return [f"SET SESSION max_statement_time = {seconds:.6f}"] if version >= (10, 1, 1) else []
    if version >= (5, 7, 8):
        return [f"SET SESSION max_execution_time = {max(1, round(seconds * 1000))}"]
    return []


def statement_seconds(src: MySQLSource) -> float:
    return src.statement_timeout.total_seconds()


def stall_seconds(src: MySQLSource) -> float | None:
    """How long the reader waits for the next batch; None: for ever."""
    if src.stall_timeout is not None:
        seconds = src.stall_timeout.total_seconds()
        return seconds or None
    statement = statement_seconds(src)
    return statement + STALL_GRACE if statement else None


def statement_timeout_message(src: MySQLSource, where: str, reason: str) -> str:
    return (f"{where}: the server stopped the read after statement_timeout ({statement_seconds(src):g}s): {reason}; "
            f"find what holds it up (a lock, a slow plan) or raise the source's statement_timeout (0 = no limit)")


def stall_message(src: MySQLSource, where: str, waited: float) -> str:
    setting = "stall_timeout" if src.stall_timeout is not None else \
        f"stall_timeout, by default statement_timeout + {STALL_GRACE:g}s"
    return (f"{where}: MySQL sent nothing for {waited:g}s ({setting}): the server or the network stopped "
            f"answering, so the read was stopped; run again, or raise the source's stall_timeout")
