"""The connection registry behind `lakeshift connections`: find connections by
name, describe them without secrets, and test them for real (see probe.py).

Everything here works on a loaded Config, including connections whose
variables are unset: those are described and marked "not usable"."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lakeshift.config.loader import Config, Connection
from lakeshift.errors import ConfigError, LakeshiftError

KINDS = ("sources", "targets", "storage")
SINGULAR = {"sources": "source", "targets": "target", "storage": "storage"}
KIND_CHOICES = {"source": "sources", "target": "targets", "storage": "storage"}


def all_connections(config: Config) -> list[Connection]:
    """Every connection to list or test, without the built-in v1.0 `default` ones
    when their variables were never set."""
    from lakeshift.config.report import visible_connections

    return visible_connections(config)


def find(config: Config, name: str, kind: str | None = None) -> list[Connection]:
    """Every connection called `name` (a name may be both a source and a target,
    like `default`); `kind` (source|target|storage) narrows it to one."""
    kinds = (KIND_CHOICES[kind],) if kind else KINDS
    found = [getattr(config, k)[name] for k in kinds if name in getattr(config, k)]
    if found:
        return found
    import difflib

    names = sorted({c.name for k in kinds for c in getattr(config, k).values()})
    near = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    what = SINGULAR[kinds[0]] if kind else "connection"
    raise ConfigError(f"unknown {what} '{name}'{hint} (declared: {', '.join(names) or '(none)'})")


def label(conn: Connection) -> str:
    return f"{SINGULAR[conn.kind]} {conn.name}"


def needs(conn: Connection) -> str:
    """'$A, $B' for the unset variables a connection uses."""
    return ", ".join(f"${v}" for v in sorted(set(conn.unresolved.values())))


def _value(conn: Connection, key: str) -> str:
    """A field for display: its ${VAR} when unset, '?' when unknown."""
    if key in conn.unresolved:
        return f"${{{conn.unresolved[key]}}}"
    value = getattr(conn.model, key, None)
    return "?" if value in (None, "") else str(value)


def where(conn: Connection) -> str:
    """host:port/database, a file path, or s3://bucket/prefix."""
    t = conn.type
    if conn.kind == "storage":
        if t == "s3":
            prefix = _value(conn, "prefix") if conn.model is not None and conn.model.prefix else ""
            return f"s3://{_value(conn, 'bucket')}" + (f"/{prefix}" if prefix else "")
        return _value(conn, "path")
    if t == "duckdb":
        return _value(conn, "path")
    return f"{_value(conn, 'host')}:{_value(conn, 'port')}/{_value(conn, 'database')}"


def markers(conn: Connection) -> list[str]:
    """Short flags for listing: SSH, TLS mode, schema, region."""
    m = conn.model
    out: list[str] = []
    if m is None:
        return out
    schema = getattr(m, "schema_", None)
    if schema and conn.kind == "targets":
        out.append(f"schema={schema}")
    tunnel = getattr(m, "ssh_tunnel", None)
    if tunnel is not None and tunnel.enabled:
        out.append(f"SSH via {_value_of(conn, 'ssh_tunnel.host', tunnel.host)}")
    ssl = getattr(m, "ssl", None)
    if ssl is not None:
        out.append(f"TLS {ssl.mode}")
    if getattr(m, "iam_role", None):
        out.append("IAM role")
    if getattr(m, "region", None):
        out.append(f"region={m.region}")
    if getattr(m, "endpoint_url", None):
        out.append(f"endpoint={m.endpoint_url}")
    return out


def _value_of(conn: Connection, path: str, value: Any) -> str:
    if path in conn.unresolved:
        return f"${{{conn.unresolved[path]}}}"
    return "?" if value in (None, "") else str(value)


def _secret_state(conn: Connection, key: str) -> str:
    if key in conn.unresolved:
        return f"not set (needs ${conn.unresolved[key]})"
    value = getattr(conn.model, key, None)
    return "set" if value is not None and value.get_secret_value() != "" else "not set"


def info(config: Config, conn: Connection) -> list[tuple[str, str]]:
    """(label, value) rows for `connections info`; never a secret's value."""
    m = conn.model
    rows: list[tuple[str, str]] = [("name", conn.name), ("kind", SINGULAR[conn.kind]), ("type", conn.type)]
    fields = {
        "s3": ("bucket", "prefix", "region", "endpoint_url", "server_side_encryption", "kms_key_id"),
        "local": ("path",),
        "duckdb": ("path", "schema_"),
    }.get(conn.type, ("host", "port", "database", "username", "schema_", "iam_role", "connect_timeout"))
    for key in fields:
        if m is None and key not in conn.unresolved:
            continue
        value = _value(conn, key)
        if value != "?" or key in ("host", "port", "database", "username", "bucket", "path"):
            rows.append((key.rstrip("_"), value))
    if m is not None and getattr(m, "description", None):
        rows.append(("description", m.description))
    if conn.type in ("s3",):
        rows.append(("access_key_id", _secret_state(conn, "access_key_id")))
        rows.append(("secret_access_key", _secret_state(conn, "secret_access_key")))
    elif conn.type not in ("local", "duckdb"):
        rows.append(("password", _secret_state(conn, "password")))
        rows.extend(_tunnel_rows(conn))
        ssl = getattr(m, "ssl", None)
        rows.append(("tls", f"mode {ssl.mode}" + (f", ca {ssl.ca}" if ssl.ca else "") if ssl else "mode prefer (default)"))
        pool = getattr(m, "connection_pool", None)
        if pool is not None:
            rows.append(("pool", f"min {pool.min_connections}, max {pool.max_connections}, "
                                 f"retry_attempts {pool.retry_attempts}"))
        s = config.settings
        timeout = getattr(m, "connect_timeout", None) or s.default_timeout
        rows.append(("timeouts", f"connect {timeout}s, retry delay {s.connection_retry_delay:g}s, "
                                 f"recycle {s.pool_recycle_time}s, health check {s.health_check_interval}s"))
    rows.append(("declared in", conn.origin))
    rows.append(("status", "usable" if conn.usable else f"not usable: needs {needs(conn)}"))
    return rows


def _tunnel_rows(conn: Connection) -> list[tuple[str, str]]:
    t = getattr(conn.model, "ssh_tunnel", None)
    if t is None or not t.enabled:
        return [("ssh tunnel", "no")]
    user = _value_of(conn, "ssh_tunnel.username", t.username)
    host = _value_of(conn, "ssh_tunnel.host", t.host)
    port = _value_of(conn, "ssh_tunnel.port", t.port)
    auth = []
    if t.private_key_path or "ssh_tunnel.private_key_path" in conn.unresolved:
        auth.append(f"key {_value_of(conn, 'ssh_tunnel.private_key_path', t.private_key_path)}")
        auth.append(f"passphrase {'set' if t.private_key_passphrase else 'not set'}")
    auth.append(f"password {'set' if t.password else 'not set'}")
    if not t.strict_host_key_checking:
        check = "OFF (strict_host_key_checking: false)"
    elif t.host_key:
        check = "pinned host_key"
    else:
        check = f"known_hosts {t.known_hosts or '~/.ssh/known_hosts'}"
    return [("ssh tunnel", f"{user}@{host}:{port}"), ("ssh auth", ", ".join(auth)), ("ssh host key", check)]


# ---------------------------------------------------------------- testing


@dataclass
class Probe:
    """The outcome of testing one connection."""

    conn: Connection
    ok: bool
    ms: int
    detail: str  # "OK (12 ms)"-style note, or the one-line reason it failed
    skipped: bool = False  # not usable (unset variables): nothing to test

    @property
    def line(self) -> str:
        return f"{label(self.conn)}: {self.detail}"


def _binlog_source(config: Config, conn: Connection) -> bool:
    """A pipeline reads this source with cdc_strategy binlog: its test says whether the server is ready."""
    return conn.kind == "sources" and any(
        p.pipeline.source == conn.name and any(t.cdc_strategy == "binlog" for t in p.tables.values())
        for p in config.pipelines.values())


def check(config: Config, conn: Connection) -> Probe:
    """Connect for real; raise a LakeshiftError (one line) when it fails."""
    from lakeshift.connections import probe

    model = conn.require()
    started = time.monotonic()
    try:
        note = probe.run(conn.kind, model, config.settings, binlog=_binlog_source(config, conn))
    except ConfigError:
        raise
    except LakeshiftError as exc:
        raise type(exc)(f"{label(conn)}: {exc}") from None
    ms = round((time.monotonic() - started) * 1000)
    return Probe(conn, True, ms, f"OK ({ms} ms)" + (f"; {note}" if note else ""))


def try_check(config: Config, conn: Connection, skip_unusable: bool = True) -> Probe:
    """Like check() but a failure is a result, for `--all`; a connection whose
    variables are unset is skipped, not failed (example configs have many)."""
    if skip_unusable and not conn.usable:
        return Probe(conn, False, 0, f"skipped: not usable: needs {needs(conn)}", skipped=True)
    try:
        return check(config, conn)
    except LakeshiftError as exc:
        message = exc.message if exc.message.startswith(label(conn)) else f"{label(conn)}: {exc.message}"
        return Probe(conn, False, 0, message.removeprefix(f"{label(conn)}: "))
