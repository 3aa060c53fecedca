"""The one way lakeshift opens a PyMySQL connection to a MySQL/MariaDB source:
session set-up (utf8mb4, UTC, autocommit, timeouts), TLS as configured and,
when enabled, an SSH tunnel.

Bulk reads go through connectorx (cx.py); these connections carry the
catalogue queries and the per-table lock only (pooled by pool.py)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

import pymysql
import pymysql.connections

from lakeshift import redact
from lakeshift.config.models import ConnectionSettings, MySQLSource
from lakeshift.errors import ConnectionFailed, LakeshiftError
from lakeshift.source.errors import TLS_REFUSED_BY_SERVER, describe_error, error_code, is_transient
from lakeshift.source.tls import NO_TLS, check_tls, ssl_context, tls_mode


def label(src: MySQLSource) -> str:
    """host:port/database, the way messages name a connection (never a password)."""
    return f"{src.host or 'localhost'}:{src.port}/{src.database or ''}"


def timeout_of(src: MySQLSource, settings: ConnectionSettings) -> int:
    return src.connect_timeout or settings.default_timeout


class Connection(pymysql.connections.Connection):
    """A control connection. Knows when it was opened (the pool recycles old
    ones) and closes the SSH tunnel it was given, if any, when it closes."""

    def __init__(self, *, tunnel: ExitStack | None = None, **kwargs: Any) -> None:
        self.opened_at = time.monotonic()
        self.tunnel = tunnel
        super().__init__(**kwargs)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.tunnel is not None:
                self.tunnel.close()
                self.tunnel = None


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
    *,
    read_timeout: float | None = -1.0,
) -> Connection:
    """A PyMySQL connection: utf8mb4, session time zone UTC, autocommit,
    timeouts and TLS from the configuration. Through src.ssh_tunnel when
    enabled (a tunnel of its own, closed with the connection, unless
    `endpoint` is given). `read_timeout`: seconds to wait for the server's
    answer (None: for ever; by default settings.default_timeout)."""
    redact.register_model(src)
    own_tunnel = endpoint is None and src.ssh_tunnel is not None and src.ssh_tunnel.enabled
    stack = ExitStack()
    try:
        host, port = endpoint or open_endpoint(src, stack)
        kwargs = _session(src, settings, host, port, stack if own_tunnel else None)
        if read_timeout is None or read_timeout >= 0:
            kwargs["read_timeout"] = read_timeout
        conn = _open_tls_as_configured(src, kwargs)
    except LakeshiftError:
        stack.close()
        raise
    except Exception as exc:
        stack.close()
        err = ConnectionFailed(redact.redact(f"cannot connect to MySQL {label(src)}: {describe_error(exc)}"))
        err.transient = is_transient(exc)  # type: ignore[attr-defined]
        err.code = error_code(exc)  # type: ignore[attr-defined]
        raise err from None
    check_tls(conn, src, label(src))
    return conn


def _session(src: MySQLSource, settings: ConnectionSettings, host: str, port: int,
             tunnel: ExitStack | None) -> dict[str, Any]:
    return dict(
        host=host, port=port, user=src.username or "",
        password=src.password.get_secret_value() if src.password else "",
        database=src.database, charset="utf8mb4", autocommit=True,
        init_command="SET time_zone = '+00:00'",
        connect_timeout=timeout_of(src, settings), read_timeout=settings.default_timeout,
        write_timeout=settings.default_timeout, program_name="lakeshift", tunnel=tunnel,
    )


def _open_tls_as_configured(src: MySQLSource, kwargs: dict[str, Any]) -> Connection:
    """TLS per ssl.mode; 'prefer' falls back to plain text when the server offers
    no TLS, and remembers that, so the next connection does not try TLS first."""
    endpoint = (kwargs["host"], kwargs["port"])
    # PyMySQL negotiates TLS on its own when given no `ssl`: 'disable' must say so
    plain = tls_mode(src) == "disable" or (tls_mode(src) == "prefer" and endpoint in NO_TLS)
    if plain:
        return Connection(ssl_disabled=True, **kwargs)
    try:
        return Connection(ssl=ssl_context(src.ssl), **kwargs)
    except pymysql.err.OperationalError as exc:
        if tls_mode(src) != "prefer" or error_code(exc) != TLS_REFUSED_BY_SERVER:
            raise
    NO_TLS.add(endpoint)
    return Connection(ssl_disabled=True, **kwargs)
