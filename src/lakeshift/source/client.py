"""Control connections to MySQL/MariaDB (PyMySQL): session set-up, TLS, SSH
tunnel, a small pool, retries of transient errors and named locks.

Bulk reads go through connectorx (see cx.py); these connections carry the
catalogue queries and the per-table lock only."""

from __future__ import annotations

import logging
import re
import ssl as ssl_lib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import pymysql
import pymysql.connections

from lakeshift import redact
from lakeshift.config.models import ConnectionSettings, MySQLSource, TLSSettings
from lakeshift.errors import ConnectionFailed, LakeshiftError, LockBusyError, SourceError, TransientSourceError

log = logging.getLogger("lakeshift.source")
T = TypeVar("T")

# Worth a retry: the server or network hiccupped, or we lost a lock race.
TRANSIENT_CODES = frozenset({
    1040,  # too many connections
    1053,  # server shutdown in progress
    1158, 1159, 1160, 1161,  # network read/write error or timeout
    1205,  # lock wait timeout
    1213,  # deadlock
    1317,  # query interrupted (KILL QUERY, e.g. by a watchdog)
    1927,  # MariaDB: connection was killed
    2002, 2003,  # cannot connect (socket / TCP refused)
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection (system error)
})
# Never retried: the same statement fails the same way again.
PERMANENT_CODES = frozenset({1044, 1045, 1049, 1054, 1064, 1142, 1143, 1146, 1227, 1370})
# The server cannot be reached at all (refused, no route, unknown host, connect timeout): not one
# table's problem, so once retries run out the run's other tables need not try again (MySQLPool).
UNREACHABLE_CODES = frozenset({2002, 2003, 2005})

MAX_RETRY_DELAY = 60.0


def label(src: MySQLSource) -> str:
    """host:port/database, the way messages name a connection (never a password)."""
    return f"{src.host or 'localhost'}:{src.port}/{src.database or ''}"


def error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a PyMySQL or connectorx error, if any."""
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    text = str(exc)
    m = re.search(r"ERROR (\d{4})\b", text)
    if m:
        return int(m.group(1))
    # connectorx/Rust driver errors carry no number for socket-level failures
    if re.search(r"Connection refused|Could not connect to address", text, re.I):
        return 2003
    # (connectorx says "IoError { server disconnected }" when the server ends the
    # connection mid-query, e.g. KILL CONNECTION or a restart)
    if re.search(r"Connection reset|Broken pipe|Lost connection|connection was killed|unexpected EOF|"
                 r"server has gone away|ConnectionReset|UnexpectedEof|server disconnected", text, re.I):
        return 2013
    return None


def is_certificate_refused(exc: BaseException) -> bool:
    """TLS verification refused the server's certificate (chain or host name):
    PyMySQL reports it as 2003 "Can't connect", connectorx as a connection
    timeout, yet the same certificate is refused on every attempt."""
    return "certificate verify failed" in str(exc).lower()


def is_unreachable(exc: BaseException) -> bool:
    """The server could not be reached (as opposed to a query or a login failing)."""
    return error_code(exc) in UNREACHABLE_CODES and not is_certificate_refused(exc)


def is_transient(exc: BaseException) -> bool:
    if is_certificate_refused(exc):
        return False
    if isinstance(exc, TransientSourceError):
        return True
    if isinstance(exc, LakeshiftError):
        return bool(getattr(exc, "transient", False))
    if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InternalError, pymysql.err.InterfaceError,
                        RuntimeError, OSError)) or type(exc).__name__ == "PanicException":
        return error_code(exc) in TRANSIENT_CODES
    return False


def describe_error(exc: BaseException) -> str:
    """One line: '(1146) Table ... doesn't exist', secrets removed."""
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        text = f"({exc.args[0]}) {exc.args[1]}"
    else:
        text = str(exc).strip()
        m = re.search(r"ERROR (\d{4}) \(\w+\): (.*?)(?: \}|$)", text, re.S)
        if m:
            text = f"({m.group(1)}) {m.group(2)}"
        text = text.splitlines()[0] if text else type(exc).__name__
    return redact.redact(text)


def source_error(exc: BaseException, where: str) -> SourceError:
    """Wrap a driver error: TransientSourceError when worth a retry."""
    cls = TransientSourceError if is_transient(exc) else SourceError
    err = cls(redact.redact(f"{where}: {describe_error(exc)}"))
    err.code = error_code(exc)  # type: ignore[attr-defined]
    return err


# ---------------------------------------------------------------- retry


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


# ---------------------------------------------------------------- connect


def timeout_of(src: MySQLSource, settings: ConnectionSettings) -> int:
    return src.connect_timeout or settings.default_timeout


def tls_mode(src: MySQLSource) -> str:
    return (src.ssl or TLSSettings()).mode


def pymysql_ssl(tls: TLSSettings | None) -> dict[str, Any] | None:
    """PyMySQL's `ssl` dict (PyMySQL then insists on TLS; connect() falls back
    to plain text for 'prefer'). A configured CA is always verified."""
    tls = tls or TLSSettings()
    if tls.mode == "disable":
        return None
    verify = tls.mode in ("verify-ca", "verify-full") or tls.ca is not None
    out: dict[str, Any] = {
        "check_hostname": tls.mode == "verify-full",
        "verify_mode": ssl_lib.CERT_REQUIRED if verify else ssl_lib.CERT_NONE,
    }
    if tls.ca:
        out["ca"] = tls.ca
    elif verify:
        paths = ssl_lib.get_default_verify_paths()  # system roots when no CA is named
        out["ca"] = paths.cafile
        out["capath"] = paths.capath
    if tls.cert:
        out["cert"] = tls.cert
    if tls.key:
        out["key"] = tls.key
    return out


_NO_TLS: set[tuple[str, int]] = set()  # endpoints that offered no TLS to a 'prefer' connection (this process)
_SSL_CONTEXTS: dict[tuple[tuple[str, Any], ...], ssl_lib.SSLContext] = {}
_SSL_LOCK = threading.Lock()


def ssl_context(tls: TLSSettings | None) -> ssl_lib.SSLContext | None:
    """The SSLContext PyMySQL would build from pymysql_ssl(tls), built once per
    process. PyMySQL makes one per connection and loads the system CA bundle
    each time: ~0.1 s of CPU per connection, a third of a 20-table run that
    found nothing to do. A context is safe to share between connections."""
    params = pymysql_ssl(tls)
    if params is None:
        return None
    key = tuple(sorted(params.items()))
    with _SSL_LOCK:
        ctx = _SSL_CONTEXTS.get(key)
        if ctx is None:
            ctx = pymysql.connections.Connection._create_ssl_ctx(None, params)  # type: ignore[arg-type]
            _SSL_CONTEXTS[key] = ctx
    return ctx


def uses_tls(conn: pymysql.connections.Connection) -> bool:
    return isinstance(getattr(conn, "_sock", None), ssl_lib.SSLSocket)


def _check_tls(conn: pymysql.connections.Connection, src: MySQLSource) -> None:
    if tls_mode(src) in ("require", "verify-ca", "verify-full") and not uses_tls(conn):
        conn.close()
        raise ConnectionFailed(f"MySQL {label(src)}: ssl.mode is {tls_mode(src)} but the server does not offer TLS")


class _TunnelledConnection(pymysql.connections.Connection):
    """Closes its own SSH tunnel when closed (for connect() without a pool)."""

    _lakeshift_exit: ExitStack | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._lakeshift_exit is not None:
                self._lakeshift_exit.close()
                self._lakeshift_exit = None


def open_endpoint(src: MySQLSource, stack: ExitStack) -> tuple[str, int]:
    """Where to connect: src.host:port, or the local end of an SSH tunnel kept
    open until `stack` closes."""
    host = src.host or "localhost"
    if src.ssh_tunnel is None or not src.ssh_tunnel.enabled:
        return host, src.port
    from lakeshift.connections import ssh  # lazily: asyncssh only when a tunnel is used

    local_host, local_port = stack.enter_context(ssh.tunnel(src.ssh_tunnel, host, src.port))
    return str(local_host), int(local_port)


def connect(
    src: MySQLSource,
    settings: ConnectionSettings,
    endpoint: tuple[str, int] | None = None,
) -> pymysql.connections.Connection:
    """A PyMySQL connection: utf8mb4, session time zone UTC, autocommit,
    timeouts and TLS from the configuration. Through src.ssh_tunnel when
    enabled (a tunnel of its own unless `endpoint` is given)."""
    redact.register_model(src)
    timeout = timeout_of(src, settings)
    own_tunnel = endpoint is None and src.ssh_tunnel is not None and src.ssh_tunnel.enabled
    stack = ExitStack()
    try:
        host, port = endpoint or open_endpoint(src, stack)
        cls = _TunnelledConnection if own_tunnel else pymysql.connections.Connection
        kwargs: dict[str, Any] = dict(
            host=host, port=port, user=src.username or "",
            password=src.password.get_secret_value() if src.password else "",
            database=src.database, charset="utf8mb4", autocommit=True,
            init_command="SET time_zone = '+00:00'",
            connect_timeout=timeout, read_timeout=settings.default_timeout,
            write_timeout=settings.default_timeout, program_name="lakeshift",
        )
        # PyMySQL >= 1.1 negotiates TLS on its own when given no `ssl`: 'disable' must say so
        plain = tls_mode(src) == "disable" or (tls_mode(src) == "prefer" and (host, port) in _NO_TLS)
        tls_kwargs: dict[str, Any] = {"ssl_disabled": True} if plain else {"ssl": ssl_context(src.ssl)}
        try:
            conn = cls(**tls_kwargs, **kwargs)
        except pymysql.err.OperationalError as exc:
            # 'prefer': PyMySQL refuses a server without TLS (2026); fall back to plain, and
            # remember it, so the next connection does not try (and fail) TLS first again
            if tls_mode(src) != "prefer" or error_code(exc) != 2026:
                raise
            _NO_TLS.add((host, port))
            conn = cls(ssl_disabled=True, **kwargs)
    except LakeshiftError:
        stack.close()
        raise
    except Exception as exc:
        stack.close()
        err = ConnectionFailed(redact.redact(f"cannot connect to MySQL {label(src)}: {describe_error(exc)}"))
        err.transient = is_transient(exc)  # type: ignore[attr-defined]
        err.code = error_code(exc)  # type: ignore[attr-defined]
        raise err from None
    if isinstance(conn, _TunnelledConnection):
        conn._lakeshift_exit = stack
    _check_tls(conn, src)
    return conn


# ---------------------------------------------------------------- pool


class MySQLPool:
    """Up to connection_pool.max_connections control connections, shared by
    threads. Connections are checked on the way out (recycled after
    pool_recycle_time, pinged after health_check_interval idle) and dropped
    instead of returned when a transient error broke them. One SSH tunnel
    (if configured) serves the pool and the connectorx reads."""

    def __init__(self, src: MySQLSource, settings: ConnectionSettings,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.src, self.settings, self.sleep = src, settings, sleep
        self.size = src.connection_pool
        self._idle: list[tuple[pymysql.connections.Connection, float, float]] = []  # conn, opened, last used
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
                with self._lock:
                    first, self._down = self._down is None, self._down or redact.redact(str(exc))
                if first:
                    log.error("MySQL %s is unreachable; the run's other tables on it fail without trying again",
                              self.label)
            raise

    def server_version(self) -> str:
        """The server's version string (e.g. '10.11.19-MariaDB-0+deb12u1'), read once."""
        if self._server_version is None:
            with self.connection() as conn:
                self._server_version = str(conn.get_server_info())
        return self._server_version

    def _open(self) -> pymysql.connections.Connection:
        return self.retry(lambda: connect(self.src, self.settings, self.endpoint()))

    def _checkout(self) -> pymysql.connections.Connection:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn, opened, used = self._idle.pop()
            if now - opened > self.settings.pool_recycle_time:
                _quiet_close(conn)
                continue
            if now - used > self.settings.health_check_interval:
                try:
                    conn.ping(reconnect=False)
                except Exception:  # noqa: BLE001 - a dead idle connection is simply replaced
                    _quiet_close(conn)
                    continue
            conn._lakeshift_opened = opened  # type: ignore[attr-defined]
            return conn
        conn = self._open()
        conn._lakeshift_opened = now  # type: ignore[attr-defined]
        return conn

    @contextmanager
    def connection(self) -> Iterator[pymysql.connections.Connection]:
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

    def _release(self, conn: pymysql.connections.Connection) -> None:
        with self._lock:
            if not self._closed and conn.open and len(self._idle) < self.size.max_connections:
                self._idle.append((conn, getattr(conn, "_lakeshift_opened", time.monotonic()), time.monotonic()))
                return
        _quiet_close(conn)

    def _discard_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _, _ in idle:
            _quiet_close(conn)

    def warm(self) -> None:
        """Open connection_pool.min_connections now (fail fast on bad settings)."""
        conns = [self._checkout() for _ in range(self.size.min_connections)]
        for conn in conns:
            self._release(conn)

    def query(self, sql: str, args: Any = None, what: str = "") -> list[tuple[Any, ...]]:
        """Run one statement with retries; rows as tuples."""
        def run() -> list[tuple[Any, ...]]:
            with self.connection() as conn, conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())

        try:
            return self.retry(run, what)
        except LakeshiftError:
            raise
        except Exception as exc:
            raise source_error(exc, what or f"MySQL {self.label}") from None

    @contextmanager
    def dedicated(self) -> Iterator[pymysql.connections.Connection]:
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
            idle, self._idle = self._idle, []
        for conn, _, _ in idle:
            _quiet_close(conn)
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


# ---------------------------------------------------------------- named locks


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
    if len(name) > 64:
        raise ValueError(f"lock name {name!r} is longer than MySQL's 64 characters")
    with conn.cursor() as cur:
        try:  # the connection sits idle while the lock is held: no wait_timeout for it
            cur.execute("SET SESSION wait_timeout = 31536000")
        except Exception as exc:  # noqa: BLE001 - best effort
            log.debug("could not raise wait_timeout for the lock connection: %s", describe_error(exc))
        cur.execute("SELECT GET_LOCK(%s, %s)", (name, timeout))
        (got,) = cur.fetchone()
    if got != 1:
        with conn.cursor() as cur:
            cur.execute("SELECT IS_USED_LOCK(%s)", (name,))
            (holder,) = cur.fetchone()
        who = f" (held by MySQL connection {holder})" if holder else ""
        raise LockBusyError(
            f"{what or 'lock ' + repr(name)}: another lakeshift run holds the lock {name!r}{who}; "
            f"wait for it to finish (waited {timeout:g}s)")
    try:
        yield HeldLock(conn, name, what)
    finally:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
                cur.fetchall()
        except Exception as exc:  # noqa: BLE001 - a dead connection has released the lock already
            log.debug("RELEASE_LOCK(%s) failed: %s", name, describe_error(exc))
