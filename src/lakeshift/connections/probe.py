"""Really connect to one configured connection and do the least that proves it
works: `SELECT 1` on databases, open a DuckDB file, list an S3 prefix, write
and remove a probe file in a local lake. Returns an optional note; raises
ConnectionFailed with one line (never a secret) when it fails.

Drivers are imported lazily. MySQL, PostgreSQL and S3 connect through the
source, load and lake packages' own functions, so a test uses the same
session settings as a sync."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from lakeshift.config.models import (
    ConnectionSettings,
    DuckDBTarget,
    LocalStorage,
    MySQLSource,
    PostgresTarget,
    S3Storage,
)
from lakeshift.connections import ssh
from lakeshift.errors import ConnectionFailed, LakeshiftError, one_line


def run(kind: str, model: Any, settings: ConnectionSettings, *, binlog: bool = False) -> str:
    """Connect for real; `binlog`: also say whether a MySQL source can serve cdc_strategy binlog."""
    if isinstance(model, MySQLSource):
        return _mysql(model, settings, binlog)
    if isinstance(model, PostgresTarget):  # RedshiftTarget is a PostgresTarget
        return _postgres(model, settings)
    if isinstance(model, DuckDBTarget):
        return _duckdb(model)
    if isinstance(model, S3Storage):
        return _s3(model)
    if isinstance(model, LocalStorage):
        return _local(model)
    raise ConnectionFailed(f"cannot test a {type(model).__name__}")


def reason(exc: BaseException) -> str:
    """A driver error as one line."""
    args = getattr(exc, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):  # pymysql (code, message)
        return f"{args[1]} (MySQL error {args[0]})"
    return one_line(str(exc)) or type(exc).__name__


def _timeout(model: Any, settings: ConnectionSettings) -> int:
    return getattr(model, "connect_timeout", None) or settings.default_timeout


def _via(model: Any) -> str:
    t = getattr(model, "ssh_tunnel", None)
    return f" via SSH {t.host}:{t.port}" if t is not None and t.enabled else ""


# ---------------------------------------------------------------- MySQL


def _mysql(src: MySQLSource, settings: ConnectionSettings, binlog: bool = False) -> str:
    from lakeshift.source.client import connect  # the one MySQL session set-up

    timeout = _timeout(src, settings)
    assert src.host is not None
    with ssh.endpoint(src.ssh_tunnel, src.host, src.port, timeout) as (host, port):
        endpoint = None if (host, port) == (src.host, src.port) else (host, port)
        try:
            conn = connect(src, settings, endpoint)
        except LakeshiftError:
            raise
        except Exception as exc:
            raise ConnectionFailed(f"cannot connect to {src.host}:{src.port}{_via(src)}: {reason(exc)}") from None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
            return _binlog_readiness(conn) if binlog else ""
        except Exception as exc:
            raise ConnectionFailed(f"connected to {src.host}:{src.port} but SELECT 1 failed: {reason(exc)}") from None
        finally:
            conn.close()


def _binlog_readiness(conn: Any) -> str:
    """Whether the source could serve cdc_strategy binlog; a server that will not say is no failure."""
    from lakeshift.source.binlog.server import readiness

    try:
        return readiness(conn)
    except Exception as exc:  # noqa: BLE001 - the connection itself works
        return f"binlog CDC readiness unknown ({reason(exc)})"


# ---------------------------------------------------------------- PostgreSQL / Redshift


def _postgres(tgt: PostgresTarget, settings: ConnectionSettings) -> str:
    timeout = _timeout(tgt, settings)
    assert tgt.host is not None
    with ssh.endpoint(tgt.ssh_tunnel, tgt.host, tgt.port, timeout) as (host, port):
        try:
            conn = _pg_connect(tgt, host, port, settings)
        except LakeshiftError:
            raise
        except Exception as exc:
            raise ConnectionFailed(f"cannot connect to {tgt.host}:{tgt.port}{_via(tgt)}: {reason(exc)}") from None
        try:
            conn.execute("SELECT 1").fetchone()
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (tgt.schema_,)).fetchone()
        except Exception as exc:
            raise ConnectionFailed(f"connected to {tgt.host}:{tgt.port} but SELECT 1 failed: {reason(exc)}") from None
        finally:
            conn.close()
    return "" if exists else f"schema {tgt.schema_} does not exist yet (created on first load)"


def _pg_connect(tgt: PostgresTarget, host: str, port: int, settings: ConnectionSettings) -> Any:
    import psycopg

    from lakeshift.load.pg_base import connection_params  # a load's libpq parameters: the same TLS rules

    endpoint = (host, port) if (host, port) != (tgt.host, tgt.port) else None
    return psycopg.connect(**connection_params(tgt, settings, endpoint), autocommit=True)


# ---------------------------------------------------------------- DuckDB


def _duckdb(tgt: DuckDBTarget) -> str:
    """Open an existing file read-only; a missing file is not created by a test,
    only its folder is checked, since the first load creates it."""
    if tgt.path == ":memory:":
        return "in-memory database"
    path = Path(tgt.path).expanduser()
    if not path.exists():
        folder = _existing_parent(path)
        problem = _not_writable(folder)
        if problem:
            raise ConnectionFailed(f"DuckDB file {path} does not exist and cannot be created: {problem}")
        return f"{tgt.path} does not exist yet (created on first load)"
    import duckdb

    try:
        conn = duckdb.connect(str(path), read_only=True)
    except Exception as exc:
        raise ConnectionFailed(f"cannot open DuckDB file {path}: {reason(exc)}") from None
    try:
        conn.execute("SELECT 1").fetchone()
    finally:
        conn.close()
    return ""


# ---------------------------------------------------------------- storage


def _local(st: LocalStorage) -> str:
    path = Path(st.path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConnectionFailed(f"lake folder {path} is a file, not a folder")
    if not path.exists():
        problem = _not_writable(_existing_parent(path))
        if problem:
            raise ConnectionFailed(f"lake folder {path} does not exist and cannot be created: {problem}")
        return f"{st.path} does not exist yet (created on first write)"
    problem = _not_writable(path)
    if problem:
        raise ConnectionFailed(f"lake folder {problem}")
    return ""


def _not_writable(folder: Path) -> str | None:
    """Why no file can be created in `folder`, or None. Really writes one:
    os.access says yes to root on read-only mounts and pseudo file systems."""
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".lakeshift-probe-"):
            pass
    except OSError as exc:
        return f"{folder} is not writable ({exc.strerror})"
    return None


def _existing_parent(path: Path) -> Path:
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _s3(st: S3Storage) -> str:
    """Lists the prefix through the lake's own S3 client, so a test sees what a sync sees."""
    from pyarrow import fs

    from lakeshift.lake import Lake

    location = f"s3://{st.bucket}/{st.prefix}".rstrip("/")
    try:
        filesystem = Lake.from_config(st).filesystem
        bucket = filesystem.get_file_info(st.bucket)
        if bucket.type == fs.FileType.NotFound:
            raise ConnectionFailed(f"bucket {st.bucket} does not exist (or is not visible to these credentials)")
        base = f"{st.bucket}/{st.prefix}" if st.prefix else st.bucket
        entries = filesystem.get_file_info(fs.FileSelector(base, allow_not_found=True))
    except LakeshiftError:
        raise
    except Exception as exc:
        raise ConnectionFailed(f"cannot list {location}: {reason(exc)}") from None
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} under {location}"
