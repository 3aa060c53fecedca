"""connectorx: the fast path from MySQL to Arrow.

Each call opens its own connection (connectorx keeps no pool between calls),
runs the session set-up (UTC, utf8mb4, the statement time limit of limits.py)
and streams the result as Arrow record batches: memory is bounded by the
batch, not the result. The URL holds the password, so it is registered with
redact and never appears in an error. connectorx runs in a child process
(worker.py says why); an injected `read_sql` (tests) runs in this process."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pyarrow as pa

from lakeshift import redact
from lakeshift.config.models import ConnectionSettings, MySQLSource
from lakeshift.errors import SourceError, TransientSourceError
from lakeshift.source import limits
from lakeshift.source.client import timeout_of
from lakeshift.source.errors import describe_error, error_code, is_certificate_refused, source_error
from lakeshift.source.pool import MySQLPool
from lakeshift.source.tls import tls_mode, uses_tls
from lakeshift.source.worker import Worker, WorkerError, WorkerLost, WorkerPool, WorkerStalled

SESSION = ["SET time_zone = '+00:00'", "SET NAMES utf8mb4"]
_STOP = (KeyboardInterrupt, SystemExit, GeneratorExit)
# The client's limit on one row (the mysql crate's largest max_allowed_packet). Its default is
# the server's max_allowed_packet, yet a server sends rows above its own limit (a MEDIUMTEXT at
# its maximum is a 16 MiB + 4 byte row; columns filled by separate statements add up).
MAX_PACKET = 1 << 30

# connectorx's pool logs every failed connection attempt at ERROR on stderr;
# our own error (one line, redacted) says it once. Must be set before import.
os.environ.setdefault("RUST_LOG", "off")


class RowTooLarge(SourceError):
    """A row is larger than MAX_PACKET: the driver cannot read it."""


def _read_sql(*args: Any, **kwargs: Any) -> Any:
    import connectorx

    return connectorx.read_sql(*args, **kwargs)


class Connectorx:
    """Runs SELECTs through connectorx against one source."""

    def __init__(self, src: MySQLSource, settings: ConnectionSettings, pool: MySQLPool,
                 read_sql: Callable[..., Any] | None = None) -> None:
        self.src, self.settings, self.pool = src, settings, pool
        self.read_sql = read_sql or _read_sql
        # A run's readers share the children of their pool; a reader alone has its own.
        self.shared: WorkerPool | None = None if read_sql else pool.cx_workers
        self.worker = None if read_sql or self.shared is not None else Worker()
        self._url: str | None = None
        self._session: list[str] | None = None

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()

    def url(self) -> str:
        if self._url is None:
            self._url = self._build_url()
        return self._url

    def _build_url(self) -> str:
        src = self.src
        user = src.username or ""
        password = src.password.get_secret_value() if src.password else ""
        redact.register(password)
        redact.register(quote(password, safe=""))
        host, port = self.pool.endpoint()
        # prefer_socket=false: the mysql crate would otherwise switch to a local unix socket
        # found via @@socket, which through a tunnel could be a different server.
        params: dict[str, str] = {"prefer_socket": "false",
                                  "tcp_connect_timeout_ms": str(timeout_of(src, self.settings) * 1000),
                                  "max_allowed_packet": str(MAX_PACKET)}
        params.update(self.tls_params())
        db = quote(src.database, safe="") if src.database else ""
        return (f"mysql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{db}?"
                + urlencode(params))

    def session(self) -> list[str]:
        """Statements run before each query: UTC, utf8mb4, the statement time limit."""
        if self._session is None:
            seconds = limits.statement_seconds(self.src)
            version = self.pool.server_version() if seconds else ""
            self._session = SESSION + limits.statement_limit_sql(version, seconds)
        return self._session

    def tls_params(self) -> dict[str, str]:
        """connectorx knows ssl-mode and ssl-ca only. 'prefer' follows what the
        control connection negotiated, since connectorx cannot fall back."""
        tls = self.src.ssl
        mode = tls_mode(self.src)
        if mode == "disable":
            return {}
        if mode == "prefer":
            with self.pool.connection() as conn:
                if not uses_tls(conn):
                    return {}
        if tls is not None and (tls.cert or tls.key):
            raise SourceError(f"MySQL {self.pool.label}: ssl.cert/ssl.key (client certificates) are not supported "
                              f"by the connectorx reader; use a user authenticated by password over TLS")
        ca = tls.ca if tls else None
        cx_mode = {"verify-ca": "VERIFY_CA", "verify-full": "VERIFY_IDENTITY"}.get(
            mode, "VERIFY_CA" if ca else "REQUIRED")
        return {"ssl-mode": cx_mode, **({"ssl-ca": ca} if ca else {})}

    def stream(self, sql: str, batch_size: int, where: str) -> Iterator[pa.RecordBatch]:
        """Record batches of one query; driver errors become SourceError /
        TransientSourceError naming `where` (never the URL)."""
        if self.worker is not None or self.shared is not None:
            yield from self._stream_worker(sql, batch_size, where)
            return
        try:
            reader = self.read_sql(self.url(), sql, return_type="arrow_stream", batch_size=batch_size,
                                   pre_execution_query=self.session())
        except _STOP:
            raise
        except SourceError:
            raise
        except BaseException as exc:  # noqa: BLE001 - Rust panics are BaseException
            raise self._wrap(exc, where) from None
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except _STOP:
                    raise
                except BaseException as exc:  # noqa: BLE001
                    raise self._wrap(exc, where) from None
                yield batch
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                close()

    def _stream_worker(self, sql: str, batch_size: int, where: str) -> Iterator[pa.RecordBatch]:
        worker = self.worker or self.shared.acquire()  # type: ignore[union-attr]
        try:
            with worker.lock:  # one query at a time per child
                it = worker.query(self.url(), sql, batch_size, self.session(), limits.stall_seconds(self.src))
                try:
                    while True:
                        try:
                            batch = next(it)
                        except StopIteration:
                            return
                        except WorkerStalled as exc:
                            raise SourceError(limits.stall_message(self.src, where, exc.waited)) from None
                        except (WorkerError, WorkerLost) as exc:
                            raise self._wrap(exc, where) from None
                        yield batch
                finally:
                    it.close()
        finally:
            if self.shared is not None:
                self.shared.release(worker)

    def fetch(self, sql: str, batch_size: int, where: str) -> list[pa.RecordBatch]:
        """All batches of a small or bounded result (one page)."""
        return list(self.stream(sql, batch_size, where))

    def _wrap(self, exc: BaseException, where: str) -> SourceError:
        text, code = str(exc), error_code(exc)
        if code in limits.TIMEOUT_CODES:
            return SourceError(limits.statement_timeout_message(self.src, where, describe_error(exc)))
        if "Packet is larger than max_allowed_packet" in text:
            return RowTooLarge(f"{where}: a row is larger than {MAX_PACKET:,} bytes, the most the MySQL driver "
                               f"reads (its max_allowed_packet)")
        if is_certificate_refused(exc):  # the same again on a retry
            return SourceError(redact.redact(f"{where}: TLS: {describe_error(exc)}"))
        err = source_error(exc, where)
        if code is None and "timed out waiting for connection" in text:
            # r2d2 gave up connecting: network trouble, worth a retry
            err = TransientSourceError(str(err))
        return err
