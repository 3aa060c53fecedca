"""MySQL named locks (GET_LOCK): one run per table at a time. The server
releases a lock when its connection ends, so a crashed run never leaves one
behind, and a lost lock is noticed before a step that needs it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pymysql.connections

from lakeshift.errors import LockBusyError
from lakeshift.source.errors import describe_error

log = logging.getLogger("lakeshift.source")
MAX_LOCK_NAME = 64  # MySQL's limit on a lock name


class HeldLock:
    """A named lock held by a connection. The server releases it when that
    connection ends, whoever ends it (a crash, KILL, wait_timeout, a network
    cut), and nothing tells the holder: `check()` asks before a step that is
    only safe under the lock."""

    def __init__(self, conn: pymysql.connections.Connection, name: str, what: str) -> None:
        self.conn, self.name, self.what = conn, name, what

    def check(self) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (self.name,))
                (held,) = cur.fetchone()
        except Exception as exc:  # noqa: BLE001 - a dead connection has lost the lock
            log.debug("lock check of %s failed: %s", self.name, describe_error(exc))
            held = 0
        if held != 1:
            raise LockBusyError(
                f"{self.what or 'lock ' + repr(self.name)}: the lock was lost during the run (its MySQL "
                f"connection was closed, e.g. KILLed or timed out), so another run may have gone on; this run "
                f"stopped before writing anything that counts. Run it again.")


@contextmanager
def named_lock(conn: pymysql.connections.Connection, name: str, timeout: float = 0,
               what: str = "") -> Iterator[HeldLock]:
    """Hold MySQL's GET_LOCK(name) for the block. The server releases it if the
    connection dies, so a crashed run never leaves it behind; the block gets a
    HeldLock to check it still holds it."""
    if len(name) > MAX_LOCK_NAME:
        raise ValueError(f"lock name {name!r} is longer than MySQL's {MAX_LOCK_NAME} characters")
    _acquire(conn, name, timeout, what)
    try:
        yield HeldLock(conn, name, what)
    finally:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
                cur.fetchall()
        except Exception as exc:  # noqa: BLE001 - a dead connection has released the lock already
            log.debug("RELEASE_LOCK(%s) failed: %s", name, describe_error(exc))


def _acquire(conn: pymysql.connections.Connection, name: str, timeout: float, what: str) -> None:
    with conn.cursor() as cur:
        try:  # the connection sits idle while the lock is held: no wait_timeout for it
            cur.execute("SET SESSION wait_timeout = 31536000")
        except Exception as exc:  # noqa: BLE001 - best effort
            log.debug("could not raise wait_timeout for the lock connection: %s", describe_error(exc))
        cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
        (got,) = cur.fetchone()
        if got != 1 and timeout > 0:  # say what the run waits for before it waits
            log.warning("%s: another lakeshift run holds the lock %r; waiting up to %gs for it to finish",
                        what or "lock", name, timeout)
            cur.execute("SELECT GET_LOCK(%s, %s)", (name, timeout))
            (got,) = cur.fetchone()
    if got == 1:
        return
    with conn.cursor() as cur:
        cur.execute("SELECT IS_USED_LOCK(%s)", (name,))
        (holder,) = cur.fetchone()
    who = f" (held by MySQL connection {holder})" if holder else ""
    raise LockBusyError(
        f"{what or 'lock ' + repr(name)}: another lakeshift run holds the lock {name!r}{who}; "
        f"wait for it to finish (waited {timeout:g}s)")
