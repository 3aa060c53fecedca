"""Redshift without a cluster: `FakeRedshift` records every statement (and
its parameters) of every connection a Redshift loader opens and answers from
a script (the target's columns, loaded batches, staged rows, lock holders);
with an S3 client, COPY is "run" by reading the COPY manifest the loader wrote
and counting the Parquet rows it lists. `PgProxy` runs everything the loader
sends on the real PostgreSQL instead, emulating only COPY."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq

from conftest import PG_DSN
from lake_profile_kit import assert_copy_accepts, staging_columns


class FakeCursor:
    def __init__(self, db: FakeRedshift) -> None:
        self.db, self.rowcount, self.rows = db, -1, []

    def execute(self, statement: str, params: Any = None) -> None:
        self.db.log.append((statement, tuple(params) if params is not None else None))
        self.rows, self.rowcount = self.db.respond(statement, params)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def close(self) -> None:
        pass


class FakeConnection:
    closed = False
    broken = False

    def __init__(self, db: FakeRedshift) -> None:
        self.db = db

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.db)

    def close(self) -> None:
        self.db.log.append(("<close>", None))


class FakeRedshift:
    """Answers as for an empty cluster with up-to-date state tables unless a
    test scripts more; `fail_on` = (fragment, message) raises like the driver
    on the first statement containing fragment ("{statement}" in the message
    is replaced by the statement, as Redshift echoes it)."""

    def __init__(self, s3: Any = None) -> None:
        self.s3 = s3
        self.log: list[tuple[str, Any]] = []
        self.columns: dict[str, list[tuple[Any, ...]]] = {"_lakeshift_loads": [("pipeline", "character varying", 256, None, None)]}
        self.loaded: list[tuple[Any, ...]] = []
        self.staged_rows = 0
        self.holders: list[tuple[int]] = []
        self.alive = 0
        self.fail_on: tuple[str, str] | None = None
        # (table_name, column_name) of the state tables: up to date unless a test says otherwise
        self.state_columns = [("_lakeshift_loads", "note"), ("_lakeshift_runs", "notes"), ("_lakeshift_locks", "holder"),
                              ("_lakeshift_loads", "deleted"), ("_lakeshift_runs", "rows_deleted"),
                              ("_lakeshift_runs", "quality")]
        self.user = ("loader", False)  # current_user, usesuper

    def connect(self) -> FakeConnection:
        return FakeConnection(self)

    def statements(self) -> list[str]:
        return [s for s, _ in self.log if s != "<close>"]

    def respond(self, statement: str, params: Any) -> tuple[list[tuple[Any, ...]], int]:
        if self.fail_on and self.fail_on[0] in statement:
            raise psycopg.errors.InternalError_(self.fail_on[1].replace("{statement}", statement))
        if statement.startswith("COPY ") and self.s3 is not None:
            self.staged_rows = self._copied_rows(statement)
            return [], self.staged_rows
        if "information_schema.columns" in statement and "table_name IN" in statement:
            return self.state_columns, -1
        if "information_schema.columns" in statement:
            return self.columns.get(params[1], []), -1
        if '"_lakeshift_loads" WHERE' in statement and statement.startswith("SELECT"):
            return self.loaded, -1
        if "FROM pg_user" in statement:
            return [self.user], 1
        if statement.startswith("SELECT COUNT(*) FROM stv_sessions"):
            return [(self.alive,)], 1
        if statement.startswith("SELECT COUNT(*)"):
            return [(self.staged_rows,)], 1
        if statement.startswith('SELECT "pid"'):
            return self.holders, -1
        if statement.startswith("INSERT INTO") and " SELECT " in statement and self.s3 is not None:
            return [], self.staged_rows
        return [], 5

    def _copied_rows(self, statement: str) -> int:
        """The rows of the parts the COPY manifest lists (each part's size checked, and
        its Parquet types against the staging table's columns, which COPY maps by position)."""
        bucket, key = statement.split(" FROM 's3://", 1)[1].split("'", 1)[0].split("/", 1)
        manifest = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        stage = statement.split(" ", 2)[1]
        create = [s for s in self.statements() if s.startswith(f"CREATE TEMP TABLE {stage} (")][-1]
        rows = 0
        for entry in manifest["entries"]:
            b, k = entry["url"][len("s3://"):].split("/", 1)
            body = self.s3.get_object(Bucket=b, Key=k)["Body"].read()
            assert len(body) == entry["meta"]["content_length"]
            part = pq.ParquetFile(io.BytesIO(body))
            assert_copy_accepts(staging_columns(create), part.schema, entry["url"])
            rows += part.metadata.num_rows
        return rows


def redshift_config(**extra: Any) -> dict[str, Any]:
    return {"type": "redshift", "host": "rs.invalid", "database": "dev", "username": "loader",
            "schema": "analytics", **extra}


def patch_redshift(monkeypatch: Any, fake: FakeRedshift) -> None:
    """Every Redshift loader of this process talks to `fake`."""
    from lakeshift.load.redshift import RedshiftLoader

    monkeypatch.setattr(RedshiftLoader, "_raw_connect", lambda self: fake.connect())


class PgProxy:
    """A real PostgreSQL connection that runs everything the Redshift loader
    sends, except COPY: that one is emulated by reading the COPY manifest the
    loader wrote under `lake_root` (as `s3_root`; every content_length checked)
    and inserting the Parquet rows."""

    def __init__(self, lake_root: Path, s3_root: str, schema: str, log: list[str]) -> None:
        self.conn = psycopg.connect(PG_DSN, autocommit=True)
        self.conn.execute(f'SET search_path = "{schema}", public')
        self.lake_root, self.s3_root, self.log = lake_root, s3_root, log

    def cursor(self) -> Any:
        return _ProxyCursor(self)

    def local(self, uri: str) -> str:
        assert uri.startswith(self.s3_root)
        return str(self.lake_root) + uri[len(self.s3_root):]

    def copy(self, stage: str, manifest_uri: str) -> int:
        entries = json.loads(Path(self.local(manifest_uri)).read_text())["entries"]
        n = 0
        for e in entries:
            path = self.local(e["url"])
            assert e["mandatory"] and e["meta"]["content_length"] == os.path.getsize(path)
            create = [s for s in self.log if s.startswith(f"CREATE TEMP TABLE {stage} (")][-1]
            assert_copy_accepts(staging_columns(create), pq.ParquetFile(path).schema, path)
            table = pq.read_table(path)
            marks = ", ".join(["%s"] * table.num_columns)
            with self.conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {stage} VALUES ({marks})", [tuple(r.values()) for r in table.to_pylist()])
            n += table.num_rows
        return n

    def close(self) -> None:
        self.conn.close()


class _ProxyCursor:
    rowcount = -1

    def __init__(self, proxy: PgProxy) -> None:
        self.proxy, self.cur = proxy, proxy.conn.cursor()

    def execute(self, statement: str, params: Any = None) -> None:
        self.proxy.log.append(statement)
        m = re.match(r"COPY (\"[^\"]+\") FROM '([^']+)' IAM_ROLE '[^']+' FORMAT AS PARQUET MANIFEST$", statement)
        if m:
            self.rowcount = self.proxy.copy(m.group(1), m.group(2))
            return
        self.cur.execute(statement, params)
        self.rowcount = self.cur.rowcount

    def fetchall(self) -> list[Any]:
        return self.cur.fetchall()

    def close(self) -> None:
        self.cur.close()
