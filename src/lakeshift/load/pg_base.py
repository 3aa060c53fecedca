"""What PostgreSQL and Redshift share (the same wire protocol): the libpq
connection parameters, used by the loaders and by `connections test` alike,
and the loader base that connects, reconnects and finds dependent views."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from lakeshift.config.models import ConnectionSettings, PostgresTarget
from lakeshift.errors import ConnectionFailed, LakeshiftError, LoadError, one_line
from lakeshift.load import sql
from lakeshift.load.base import LoaderBase
from lakeshift.load.session import Session
from lakeshift.redact import redact, register_model


def secret_value(value: Any) -> str | None:
    """The text of a secret (pydantic SecretStr or plain), None when unset."""
    if value is None:
        return None
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def connection_params(target: PostgresTarget, settings: ConnectionSettings,
                      endpoint: tuple[str, int] | None = None) -> dict[str, Any]:
    """libpq keywords for psycopg and ADBC alike. Through an SSH tunnel libpq
    connects to the local end (`hostaddr`) but still checks the server
    certificate against the real `host`."""
    if not target.host:
        raise ConnectionFailed(f"{target.type} target: host is not set")
    params: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "dbname": target.database or "",
        "user": target.username or "",
        "connect_timeout": target.connect_timeout or settings.default_timeout,
        "application_name": "lakeshift",
    }
    if endpoint is not None:
        params["hostaddr"], params["port"] = endpoint
    password = secret_value(target.password)
    if password:
        params["password"] = password
    tls = target.ssl
    if tls is not None:
        mode = tls.mode
        if tls.ca and mode in ("prefer", "require"):
            mode = "verify-full"  # a configured CA means: verify the server, never fall back to plain text
        params["sslmode"] = mode
        for key, value in (("sslrootcert", tls.ca), ("sslcert", tls.cert), ("sslkey", tls.key)):
            if value:
                params[key] = os.path.expanduser(value)
    return {k: v for k, v in params.items() if v != ""}


def describe_target(target: PostgresTarget) -> str:
    kind = "Redshift" if target.type == "redshift" else "PostgreSQL"
    return f"{kind} target {target.host}:{target.port}/{target.database}"


class PgProtocolLoader(LoaderBase):
    """Connection handling shared by PostgreSQL and Redshift (same wire protocol)."""

    def __init__(self, target: PostgresTarget, settings: ConnectionSettings, *,
                 connection_factory: Callable[[], Any] | None = None, lock_timeout: float | None = None) -> None:
        register_model(target)
        super().__init__(target.schema_, describe_target(target),
                         float(settings.default_timeout if lock_timeout is None else lock_timeout))
        self.target = target
        self.settings = settings
        self._factory = connection_factory
        self._stack = ExitStack()
        self._endpoint: tuple[str, int] | None = None
        self._main_session: Session | None = None
        self._closed = False
        if connection_factory is None and target.ssh_tunnel is not None and target.ssh_tunnel.enabled:
            from lakeshift.connections.ssh import tunnel  # imported only when a tunnel is configured

            self._endpoint = self._stack.enter_context(tunnel(target.ssh_tunnel, target.host, target.port))

    @property
    def params(self) -> dict[str, Any]:
        return connection_params(self.target, self.settings, self._endpoint)

    def _raw_connect(self) -> Any:
        import psycopg

        return psycopg.connect(**self.params, autocommit=True, prepare_threshold=None)

    def connect(self) -> Session:
        if self._closed:
            raise LoadError(f"{self.describe}: the loader is closed")
        try:
            conn = self._factory() if self._factory else self._raw_connect()
        except LakeshiftError:
            raise
        except Exception as exc:  # noqa: BLE001 - any driver error: report it without secrets
            raise ConnectionFailed(redact(f"cannot connect to {self.describe}: {one_line(str(exc))}")) from None
        return Session(conn, self.describe)

    def _main(self) -> Session:
        session = self._main_session
        if session is not None and (getattr(session.conn, "closed", False) or getattr(session.conn, "broken", False)):
            session.close()  # e.g. the server restarted: reconnect instead of failing every call
            self._main_session = session = None
        if session is None:
            session = self._main_session = self.connect()
        return session

    def dependent_views(self, s: Session, target_table: str) -> list[str]:
        rows = s.query(sql.dependent_views(s.placeholder), (self.dialect.catalog_name(self.schema),
                                                            self.dialect.catalog_name(target_table)))
        return [f"{r[0]}.{r[1]}" for r in rows]

    def close(self) -> None:
        with self._mutex:
            if self._main_session is not None:
                self._main_session.close()
                self._main_session = None
            self._closed = True
            self._stack.close()
