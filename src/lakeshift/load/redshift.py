"""Redshift target. Same wire protocol and merge SQL as PostgreSQL; the rows
arrive with one COPY ... FORMAT AS PARQUET MANIFEST per batch into a TEMP
staging table, inside the batch's transaction:

    BEGIN
    CREATE TEMP TABLE "_ls_stage_<hash>" (...columns as in the Parquet...)
    COPY "_ls_stage_<hash>" FROM 's3://.../_<batch_id>.copy-manifest' IAM_ROLE '...' FORMAT AS PARQUET MANIFEST
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
with the holder's backend pid and user, written under `LOCK` and ignored once
that session is gone from STV_SESSIONS (a killed run never blocks the next);
a regular user sees only its own sessions there, so another user's lease is
never taken as dead."""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import pyarrow.fs as pafs

from lakeshift.batch import Manifest
from lakeshift.errors import LoadError, LockBusyError
from lakeshift.identifiers import qualified_ansi, quote_ansi
from lakeshift.lake_profile import legacy_unsigned
from lakeshift.load import sql
from lakeshift.load.contracts import LoadContext, Part
from lakeshift.load.dialects import RedshiftTypes
from lakeshift.load.locking import busy_message, wait_loop
from lakeshift.load.naming import stage_name
from lakeshift.load.pg_base import PgProtocolLoader, secret_value
from lakeshift.load.redshift_copy import (
    LOAD_ERROR,
    check_json_sizes,
    copy_failure,
    credentials_clause,
    json_columns,
    literal,
)
from lakeshift.load.session import Session, translate_errors
from lakeshift.load.staged import StagedLoad
from lakeshift.load.state import LOCKS_TABLE
from lakeshift.load.strategies import MoveJob, TableFacts
from lakeshift.load.types import parse_arrow, redshift_staging_type
from lakeshift.redact import register, register_model
from lakeshift.s3_clients import chain_keys, put_object

log = logging.getLogger("lakeshift.load")

try:  # Redshift reports client_encoding 'UNICODE'; psycopg < 3.3 does not know that alias
    from psycopg import _encodings

    _encodings.py_codecs.setdefault(b"UNICODE", "utf-8")  # type: ignore[attr-defined]
except Exception:  # noqa: BLE001 - newer psycopg has it; the private module may move
    pass

COPY_MANIFEST_SUFFIX = ".copy-manifest"
# Every session: conversions between TIMESTAMP and TIMESTAMPTZ must not depend on the user's default
# time zone, and quoted names fold to lower case whatever the cluster's enable_case_sensitive_identifier
# (the loader compares names folded to lower case).
SESSION_SETUP = ("SET timezone TO 'UTC'", "SET enable_case_sensitive_identifier TO false")
# A regular user sees only its own sessions in STV_SESSIONS (superusers see all).
LOCK_VIEWER = "SELECT current_user, usesuper FROM pg_user WHERE usename = current_user"


def _cred(obj: Any, name: str) -> str | None:
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return secret_value(value)


def copy_manifest(parts: list[tuple[str, int]]) -> str:
    """Redshift COPY manifest: Parquet needs meta.content_length for every entry."""
    return json.dumps({"entries": [{"url": url, "mandatory": True, "meta": {"content_length": size}}
                                   for url, size in parts]}, indent=1)


def copy_statement(stage_sql: str, manifest_uri: str, credentials_sql: str) -> str:
    return (f"COPY {stage_sql} FROM {literal(manifest_uri, 'manifest URL')} {credentials_sql} "
            "FORMAT AS PARQUET MANIFEST")


def staging_columns(manifest: Manifest) -> list[tuple[str, str]]:
    """The COPY staging table's columns: exactly the parts' Parquet types, in their order."""
    legacy = legacy_unsigned(manifest)
    if legacy:
        raise LoadError(
            f"batch {manifest.batch_id} of {manifest.table} was written by an earlier lakeshift with unsigned "
            f"Parquet types in column(s) {', '.join(repr(n) for n in legacy)}, which Redshift COPY cannot read; "
            f"the batch was not loaded. Way out: `lakeshift batches skip -p {manifest.pipeline} -t {manifest.table} "
            f"{manifest.batch_id}`, then `lakeshift watermark reset -p {manifest.pipeline} -t {manifest.table}` "
            "(a full_sync table: just sync again), so the rows are extracted again in the current lake profile")
    cols = [(c.name, redshift_staging_type(parse_arrow(c.arrow_type))) for c in manifest.columns]
    return cols + [(sql.ORDINAL_COLUMN, "BIGINT")] if manifest.row_ordinal else cols


class RedshiftLoader(PgProtocolLoader):
    dialect = RedshiftTypes()
    create_primary_key = False  # Redshift does not enforce keys and its planner trusts them: never declare one
    state_locks_table = True  # no advisory locks: lock() keeps a lease row in _lakeshift_locks

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
        """IAM_ROLE when the target has one; else the lake storage's keys, else the AWS credential chain's."""
        role = getattr(self.target, "iam_role", None)
        return credentials_clause(role, None if role else self._copy_keys())

    def _copy_keys(self) -> tuple[str, str, str | None] | None:
        creds = self.lake_credentials
        key = _cred(creds, "access_key_id") if creds is not None else None
        secret = _cred(creds, "secret_access_key") if creds is not None else None
        if key and secret:
            return key, secret, _cred(creds, "session_token") or None
        return chain_keys()

    def _raw_connect(self) -> Any:
        conn = super()._raw_connect()
        try:
            for stmt in SESSION_SETUP:
                conn.execute(stmt)
        except Exception:
            conn.close()
            raise
        return conn

    @contextmanager
    def lock(self, pipeline: str, table: str) -> Iterator[None]:
        self.ensure_state_ready()
        s = self.connect()
        locks = qualified_ansi(self.schema, LOCKS_TABLE)
        who = (pipeline, table)

        def attempt() -> bool:
            s.begin()
            try:
                s.execute(f"LOCK {locks}")
                holders = s.query(f'SELECT "pid", "holder" FROM {locks} WHERE "pipeline" = %s AND "table_name" = %s',
                                  who)
                if holders:
                    if _may_be_alive(s, holders):
                        s.rollback()
                        return False
                    s.execute(f'DELETE FROM {locks} WHERE "pipeline" = %s AND "table_name" = %s', who)
                s.execute(f'INSERT INTO {locks} ("pipeline", "table_name", "pid", "holder", "acquired_at") '
                          "VALUES (%s, %s, pg_backend_pid(), current_user, %s)", (*who, datetime.now(timezone.utc)))
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

    def _begin(self, ctx: LoadContext, head: Manifest, target_table: str) -> StagedLoad:
        staging = RedshiftStaging(ctx, head, credentials_sql=self.credentials_sql, storage=self.lake_credentials)
        return StagedLoad(ctx, head, target_table, staging)


def _may_be_alive(s: Session, holders: list[tuple[Any, ...]]) -> bool:
    """A lease's holder is dead only when STV_SESSIONS would show it and does not:
    it shows a regular user only its own sessions, so another user's lease (or one
    from a release that did not record the holder) counts as alive."""
    pids = [r[0] for r in holders]
    if s.query("SELECT COUNT(*) FROM stv_sessions WHERE process IN (" + ", ".join(["%s"] * len(pids)) + ")",
               pids)[0][0]:
        return True
    me, sees_all = (s.query(LOCK_VIEWER) or [(None, False)])[0]
    if sees_all:
        return False
    return any(r[1] is None or str(r[1]).strip() != str(me).strip() for r in holders)


def _load_error(s: Session) -> tuple[Any, ...] | None:
    """The failed COPY's row of SYS_LOAD_ERROR_DETAIL; the transaction is rolled back
    first (nothing runs in a failed one). Best effort: None when it cannot be read."""
    s.rollback()
    try:
        rows = s.query(LOAD_ERROR)
    except LoadError:
        return None
    return rows[0] if rows and len(rows[0]) == 5 else None


class RedshiftStaging:
    """The Staging (load/contracts.py) of Redshift: a TEMP table filled by one
    COPY of every part, from a COPY manifest written next to them, inside the
    batch's transaction."""

    def __init__(self, ctx: LoadContext, head: Manifest, *, credentials_sql: Callable[[], str],
                 storage: Any) -> None:
        self.ctx, self.head = ctx, head
        # COPY maps Parquet columns by position: staging holds exactly the part's columns, the
        # row ordinal the writer put last included (Redshift numbers no rows itself).
        self.ordinal = head.row_ordinal
        self.name = stage_name(head)
        self.stage_sql = quote_ansi(self.name)  # TEMP tables take no schema
        self._credentials_sql = credentials_sql
        self._storage = storage  # the lake's storage config: keys and server-side encryption for the manifest
        self._sizes: dict[str, int] = {}
        self._sess: Session | None = None
        self.manifest_uri: str | None = None
        self._json = json_columns(head.columns)  # staged as VARCHAR: their documents' length is checked

    def accept(self, part: Part) -> None:
        if not part.uri.startswith("s3://"):
            raise LoadError(f"Redshift COPY loads from S3 only; part {part.uri} is not in an S3 lake")
        with translate_errors(f"reading the size of {part.uri}"):
            info = part.filesystem.get_file_info(part.path)
        if info.type != pafs.FileType.File or info.size is None:
            raise LoadError(f"part {part.uri} does not exist in the lake")
        self._sizes[part.uri] = int(info.size)  # the object's real size: COPY checks it
        check_json_sizes(self._json, part.path, part.filesystem, part.uri)

    def session(self) -> Session:
        if self._sess is None:
            self._sess = self.ctx.connect()
        return self._sess

    def write_copy_manifest(self, parts: Sequence[Part]) -> str:
        """Write _<batch_id>.copy-manifest in the parts' folder; return its s3:// URL. The leading
        underscore hides it from Athena, Spectrum and Spark, which read the folder as a table."""
        first = parts[0]
        dir_path = posixpath.commonpath([p.path for p in parts])
        dir_uri = "s3://" + posixpath.commonpath([p.uri[len("s3://"):] for p in parts])
        if len(parts) == 1:
            dir_path, dir_uri = posixpath.dirname(first.path), posixpath.dirname(first.uri)
        name = "_" + self.head.batch_id + COPY_MANIFEST_SUFFIX
        data = copy_manifest([(p.uri, self._sizes[p.uri]) for p in parts]).encode("utf-8")
        path = posixpath.join(dir_path, name)
        storage = self._storage
        with translate_errors(f"writing the COPY manifest of batch {self.head.batch_id}"):
            if getattr(storage, "server_side_encryption", None):
                put_object(storage, path, data)  # with the lake's encryption headers
            else:
                with first.filesystem.open_output_stream(path) as out:
                    out.write(data)
        self.manifest_uri = posixpath.join(dir_uri, name)
        return self.manifest_uri

    def fill(self, s: Session, manifest: Manifest, parts: Sequence[Part]) -> None:
        cols = staging_columns(manifest)
        uri = self.write_copy_manifest(parts)
        creds = self._credentials_sql()
        s.execute(sql.create_table("", self.name, cols, temporary=True))
        try:
            s.execute(copy_statement(self.stage_sql, uri, creds))
        except LoadError as exc:
            text = getattr(exc, "full_text", str(exc))
            raise LoadError(copy_failure(self.head.batch_id, text, _load_error(s))) from None

    def rows(self, s: Session) -> int:
        return int(s.query(sql.count_rows(self.stage_sql))[0][0])

    def facts(self, s: Session, job: MoveJob, known: TableFacts) -> TableFacts:
        return known

    def close(self) -> None:
        if self._sess is not None:
            self._sess.close()  # TEMP staging ends with the session
            self._sess = None
