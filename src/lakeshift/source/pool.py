"""A small pool of control connections to one MySQL/MariaDB source, shared by
the threads of a run, with retries of transient errors and fail-fast once the
server is known to be unreachable."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from lakeshift import redact
from lakeshift.config.models import ConnectionSettings, MySQLSource
from lakeshift.errors import ConnectionFailed, LakeshiftError, SourceError
from lakeshift.source.client import Connection, connect, label, open_endpoint
from lakeshift.source.errors import is_transient, is_unreachable, source_error
from lakeshift.source.retry import retry

if TYPE_CHECKING:
    from lakeshift.source.worker import WorkerPool

log = logging.getLogger("lakeshift.source")
T = TypeVar("T")


class MySQLPool:
    """Up to connection_pool.max_connections control connections, shared by
    threads. Connections are checked on the way out (recycled after
    pool_recycle_time, pinged after health_check_interval idle) and dropped
    instead of returned when a transient error broke them. One SSH tunnel
    (if configured) serves the pool and the connectorx reads.

    `cx_workers`: connectorx children for the readers that use this pool to
    share (a run's tables); the pool closes them with itself."""

    def __init__(self, src: MySQLSource, settings: ConnectionSettings,
                 sleep: Callable[[float], None] = time.sleep, *, cx_workers: WorkerPool | None = None) -> None:
        self.src, self.settings, self.sleep = src, settings, sleep
        self.size = src.connection_pool
        self._cx_workers = cx_workers
        self._idle: list[tuple[Connection, float]] = []  # connection, last used
        self._slots = threading.BoundedSemaphore(self.size.max_connections)
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self._endpoint: tuple[str, int] | None = None
        self._closed = False
        self._down: str | None = None  # why the server is unreachable, once a table's retries ran out
        self._server_version: str | None = None
        redact.register_model(src)

    @property
    def label(self) -> str:
        return label(self.src)

    @property
    def cx_workers(self) -> WorkerPool | None:
        return self._cx_workers

    def endpoint(self) -> tuple[str, int]:
        with self._lock:
            if self._endpoint is None:
                self._endpoint = open_endpoint(self.src, self._stack)
            return self._endpoint

    def retry(self, fn: Callable[[], T], what: str = "") -> T:
        """fn with retries of transient errors. The run's tables share this pool:
        the first whose retries end with the server unreachable marks it down,
        and every later attempt (of any table) fails at once with that line."""
        def attempt() -> T:
            if self._down is not None:
                raise ConnectionFailed(self._down)  # not transient: no retry
            return fn()

        try:
            return retry(attempt, self.size.retry_attempts, self.settings.connection_retry_delay,
                         sleep=self.sleep, what=what or f"MySQL {self.label}")
        except BaseException as exc:  # noqa: BLE001 - re-raised as it is
            if is_unreachable(exc):
                self._mark_down(exc)
            raise

    def _mark_down(self, exc: BaseException) -> None:
        with self._lock:
            first, self._down = self._down is None, self._down or redact.redact(str(exc))
        if first:
            log.error("MySQL %s is unreachable; the run's other tables on it fail without trying again", self.label)

    def server_version(self) -> str:
        """The server's version string (e.g. '10.11.19-MariaDB-0+deb12u1'), read once."""
        if self._server_version is None:
            with self.connection() as conn:
                self._server_version = str(conn.get_server_info())
        return self._server_version

    def _open(self) -> Connection:
        return self.retry(lambda: connect(self.src, self.settings, self.endpoint()))

    def _checkout(self) -> Connection:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn, used = self._idle.pop()
            if now - conn.opened_at > self.settings.pool_recycle_time:
                _quiet_close(conn)
                continue
            if now - used > self.settings.health_check_interval:
                try:
                    conn.ping(reconnect=False)
                except Exception:  # noqa: BLE001 - a dead idle connection is simply replaced
                    _quiet_close(conn)
                    continue
            return conn
        return self._open()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        if self._closed:
            raise SourceError(f"MySQL {self.label}: the connection pool is closed")
        if not self._slots.acquire(timeout=max(self.settings.default_timeout, 1)):
            raise ConnectionFailed(
                f"MySQL {self.label}: all {self.size.max_connections} pooled connections are busy "
                f"(connection_pool.max_connections)")
        conn = None
        try:
            conn = self._checkout()
            yield conn
        except BaseException as exc:
            if conn is not None and (is_transient(exc) or not conn.open):
                _quiet_close(conn)
                conn = None
                self._discard_idle()  # a server restart or network cut broke them all
            raise
        finally:
            if conn is not None:
                self._release(conn)
            self._slots.release()

    def _release(self, conn: Connection) -> None:
        with self._lock:
            if not self._closed and conn.open and len(self._idle) < self.size.max_connections:
                self._idle.append((conn, time.monotonic()))
                return
        _quiet_close(conn)

    def _discard_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            _quiet_close(conn)

    def warm(self) -> None:
        """Open connection_pool.min_connections now (fail fast on bad settings)."""
        conns = [self._checkout() for _ in range(self.size.min_connections)]
        for conn in conns:
            self._release(conn)

    def query(self, sql: str, args: Any = None, what: str = "") -> list[tuple[Any, ...]]:
        """Run one statement with retries; rows as tuples."""
        return self._statement(sql, args, what, lambda cur: list(cur.fetchall()))

    def fields(self, sql: str, what: str = "") -> list[Any]:
        """The result metadata (pymysql field descriptors) of one statement, with retries."""
        def describe(cur: Any) -> list[Any]:
            cur.fetchall()
            return list(cur._result.fields)  # pymysql keeps the protocol's column definitions here

        return self._statement(sql, None, what, describe)

    def _statement(self, sql: str, args: Any, what: str, take: Callable[[Any], T]) -> T:
        def run() -> T:
            with self.connection() as conn, conn.cursor() as cur:
                cur.execute(sql, args)
                return take(cur)

        return self._retried(run, what)

    def _retried(self, run: Callable[[], T], what: str) -> T:
        """`run` with the pool's retries; a driver error becomes one source error naming `what`."""
        try:
            return self.retry(run, what)
        except LakeshiftError:
            raise
        except Exception as exc:
            raise source_error(exc, what or f"MySQL {self.label}") from None

    def long_query(self, sql: str, what: str = "") -> list[tuple[Any, ...]]:
        """One statement that may work for long before its first row (verify's aggregate over a
        whole table), with retries: on a connection of its own that waits for the answer as a
        read does (statement_timeout on the server, stall_timeout here), not default_timeout."""
        from lakeshift.source import limits

        def run() -> list[tuple[Any, ...]]:
            conn = connect(self.src, self.settings, self.endpoint(), read_timeout=limits.stall_seconds(self.src))
            try:
                with conn.cursor() as cur:
                    for statement in limits.statement_limit_sql(str(conn.get_server_info()),
                                                                limits.statement_seconds(self.src)):
                        cur.execute(statement)
                    cur.execute(sql)
                    return list(cur.fetchall())
            finally:
                _quiet_close(conn)

        return self._retried(run, what)

    @contextmanager
    def dedicated(self) -> Iterator[Connection]:
        """A connection outside the pool's limit, e.g. to hold a lock for a
        whole run without starving the pool."""
        conn = self._open()
        try:
            yield conn
        finally:
            _quiet_close(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._discard_idle()
        if self._cx_workers is not None:
            self._cx_workers.close()
        self._stack.close()

    def __enter__(self) -> MySQLPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quiet_close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing to do
        pass
