"""Redshift target. Same wire protocol and merge SQL as PostgreSQL; the rows
arrive with one COPY ... FORMAT AS PARQUET MANIFEST per batch into a TEMP
staging table, inside the batch's transaction:

    BEGIN
    CREATE TEMP TABLE "_ls_stage_<hash>" (...columns as in the Parquet...)
    COPY "_ls_stage_<hash>" FROM 's3://.../<batch_id>.copy-manifest' IAM_ROLE '...' FORMAT AS PARQUET MANIFEST
    DELETE FROM target USING stage ... ; INSERT INTO target SELECT ...   (or DELETE + INSERT to replace)
    INSERT INTO "<schema>"."_lakeshift_loads" ...
    DROP TABLE "_ls_stage_<hash>"
    COMMIT

The COPY manifest (every part's URL with meta.content_length, which a Parquet
COPY requires) is written next to the batch's parts through the lake's
filesystem at commit. No TRUNCATE anywhere: it commits implicitly on Redshift.
ALTER COLUMN ... TYPE (VARCHAR widening, the only one Redshift allows) cannot
run in a transaction block, so it runs just before the transaction; it only
ever widens, so it is safe even if the load then fails.

Redshift has no advisory locks: `lock()` keeps a row in `_lakeshift_locks`
with the holder's backend pid, written under `LOCK` and ignored once that
session is gone from STV_SESSIONS (a killed run never blocks the next)."""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import pyarrow.fs as pafs

from lakeshift.batch import BatchFile, Manifest
from lakeshift.config.models import TableConfig
from lakeshift.errors import LoadError, LockBusyError
from lakeshift.identifiers import qualified_ansi, quote_ansi
from lakeshift.load import sql
from lakeshift.load.base import Session, StagedLoadBase, translate_errors, wait_loop
from lakeshift.load.postgres import PgProtocolLoader, _secret, busy_message, stage_name
from lakeshift.load.state import LOCKS_TABLE
from lakeshift.load.types import RedshiftTypes, parse_arrow, redshift_staging_type
from lakeshift.redact import register, register_model
from lakeshift.s3_clients import put_object

log = logging.getLogger("lakeshift.load")

try:  # Redshift reports client_encoding 'UNICODE'; psycopg < 3.3 does not know that alias
    from psycopg import _encodings

    _encodings.py_codecs.setdefault(b"UNICODE", "utf-8")  # type: ignore[attr-defined]
except Exception:  # noqa: BLE001 - newer psycopg has it; the private module may move
    pass

COPY_MANIFEST_SUFFIX = ".copy-manifest"


def literal(value: str, what: str) -> str:
    """A quoted literal for the few places Redshift takes no parameters (COPY).
    Values with quotes, backslashes or control characters are refused rather
    than escaped; the value itself is never echoed (it may be a secret)."""
    if any(ch in value for ch in "'\\") or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise LoadError(f"Redshift COPY: the {what} contains a quote, backslash or control character")
    return f"'{value}'"


def _cred(obj: Any, name: str) -> str | None:
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return _secret(value)


def copy_manifest(parts: list[tuple[str, int]]) -> str:
    """Redshift COPY manifest: Parquet needs meta.content_length for every entry."""
    return json.dumps({"entries": [{"url": url, "mandatory": True, "meta": {"content_length": size}}
                                   for url, size in parts]}, indent=1)


def copy_statement(stage_sql: str, manifest_uri: str, credentials_sql: str) -> str:
    return (f"COPY {stage_sql} FROM {literal(manifest_uri, 'manifest URL')} {credentials_sql} "
            "FORMAT AS PARQUET MANIFEST")


class RedshiftLoader(PgProtocolLoader):
    dialect = RedshiftTypes()
    create_primary_key = False  # Redshift does not enforce keys and its planner trusts them: never declare one

    def __init__(self, *args: Any, lake_credentials: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lake_credentials = lake_credentials
        if lake_credentials is not None:
            if isinstance(lake_credentials, dict):
                for v in lake_credentials.values():
                    register(v)
            else:
                register_model(lake_credentials)

    def credentials_sql(self) -> str:
        """IAM_ROLE when the target has one; static keys from the lake storage only otherwise."""
        role = getattr(self.target, "iam_role", None)
        if role:
            return f"IAM_ROLE {literal(role, 'iam_role')}"
        creds = self.lake_credentials
        key = _cred(creds, "access_key_id") if creds is not None else None
        secret = _cred(creds, "secret_access_key") if creds is not None else None
        if not (key and secret):
            raise LoadError(f"{self.describe}: COPY needs `iam_role` on the Redshift target (preferred) or "
                            "access_key_id/secret_access_key on the lake storage")
        for v in (key, secret):
            register(v)
        out = f"ACCESS_KEY_ID {literal(key, 'access key id')} SECRET_ACCESS_KEY {literal(secret, 'secret key')}"
        token = _cred(creds, "session_token")
        if token:
            register(token)
            out += f" SESSION_TOKEN {literal(token, 'session token')}"
        return out

    def _state_ddl(self) -> list[str]:
        return [sql.create_schema(self.schema), *sql.state_tables(self.schema, with_locks=True)]

    @contextmanager
    def lock(self, pipeline: str, table: str) -> Iterator[None]:
        if not self._state_ready:
            self.ensure_state_tables()
        s = self.connect()
        locks = qualified_ansi(self.schema, LOCKS_TABLE)
        who = (pipeline, table)

        def attempt() -> bool:
            s.begin()
            try:
                s.execute(f"LOCK {locks}")
                holders = [r[0] for r in s.query(
                    f'SELECT "pid" FROM {locks} WHERE "pipeline" = %s AND "table_name" = %s', who)]
                if holders:
                    alive = s.query("SELECT COUNT(*) FROM stv_sessions WHERE process IN ("
                                    + ", ".join(["%s"] * len(holders)) + ")", holders)[0][0]
                    if alive:
                        s.rollback()
                        return False
                    s.execute(f'DELETE FROM {locks} WHERE "pipeline" = %s AND "table_name" = %s', who)
                s.execute(f'INSERT INTO {locks} ("pipeline", "table_name", "pid", "acquired_at") '
                          "VALUES (%s, %s, pg_backend_pid(), %s)", (*who, datetime.now(timezone.utc)))
                s.commit()
                return True
            except BaseException:
                s.rollback()
                raise

        try:
            if not wait_loop(self.lock_timeout, attempt, poll=1.0):
                raise LockBusyError(busy_message(pipeline, table, self.describe, self.schema, self.lock_timeout))
            try:
                yield
            finally:
                try:
                    s.execute(f'DELETE FROM {locks} WHERE "pipeline" = %s AND "table_name" = %s '
                              "AND \"pid\" = pg_backend_pid()", who)
                except LoadError as exc:
                    log.warning("could not release the load lock of %s.%s: %s", pipeline, table, exc)
        finally:
            s.close()

    def begin(self, manifest_head: Manifest, target_table: str, table_cfg: TableConfig) -> RedshiftStagedLoad:
        return RedshiftStagedLoad(self, manifest_head, target_table, table_cfg)


class RedshiftStagedLoad(StagedLoadBase):
    loader: RedshiftLoader
    ordinal = False  # COPY maps Parquet columns by position: staging holds exactly the batch's columns

    def __init__(self, loader: RedshiftLoader, head: Manifest, target_table: str, table_cfg: TableConfig) -> None:
        super().__init__(loader, head, target_table, table_cfg)
        self.name = stage_name(head)
        self._sizes: dict[str, int] = {}
        self._sess: Session | None = None
        self.manifest_uri: str | None = None

    @property
    def stage_sql(self) -> str:
        return quote_ansi(self.name)  # TEMP tables take no schema

    def add_part(self, path: str, filesystem: pafs.FileSystem, uri: str, file: BatchFile) -> None:
        if not uri.startswith("s3://"):
            raise LoadError(f"Redshift COPY loads from S3 only; part {uri} is not in an S3 lake")
        with translate_errors(f"reading the size of {uri}"):
            info = filesystem.get_file_info(path)
        if info.type != pafs.FileType.File or info.size is None:
            raise LoadError(f"part {uri} does not exist in the lake")
        super().add_part(path, filesystem, uri, file)
        self._sizes[uri] = int(info.size)  # the object's real size: COPY checks it

    def _session(self) -> Session:
        if self._sess is None:
            self._sess = self.loader.connect()
        return self._sess

    def write_copy_manifest(self) -> str:
        """Write <batch_id>.copy-manifest in the parts' folder; return its s3:// URL."""
        first = self.parts[0]
        dir_path = posixpath.commonpath([p.path for p in self.parts])
        dir_uri = "s3://" + posixpath.commonpath([p.uri[len("s3://"):] for p in self.parts])
        if len(self.parts) == 1:
            dir_path, dir_uri = posixpath.dirname(first.path), posixpath.dirname(first.uri)
        name = self.head.batch_id + COPY_MANIFEST_SUFFIX
        data = copy_manifest([(p.uri, self._sizes[p.uri]) for p in self.parts]).encode("utf-8")
        path = posixpath.join(dir_path, name)
        storage = self.loader.lake_credentials
        with translate_errors(f"writing the COPY manifest of batch {self.head.batch_id}"):
            if getattr(storage, "server_side_encryption", None):
                put_object(storage, path, data)  # with the lake's encryption headers
            else:
                with first.filesystem.open_output_stream(path) as out:
                    out.write(data)
        self.manifest_uri = posixpath.join(dir_uri, name)
        return self.manifest_uri

    def _stage_in_transaction(self, s: Session, manifest: Manifest) -> None:
        cols = [(c.name, redshift_staging_type(parse_arrow(c.arrow_type))) for c in manifest.columns]
        uri = self.write_copy_manifest()
        creds = self.loader.credentials_sql()
        s.execute(sql.create_table("", self.name, cols, temporary=True))
        s.execute(copy_statement(self.stage_sql, uri, creds))

    def _staged_rows(self, s: Session) -> int:
        return int(s.query(sql.count_rows(self.stage_sql))[0][0])

    def _cleanup(self) -> None:
        if self._sess is not None:
            self._sess.close()  # TEMP staging ends with the session
            self._sess = None
