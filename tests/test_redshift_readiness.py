"""Redshift readiness (issue 17, item 6): each point found by reading the SQL
lakeshift sends against Redshift's documentation, pinned here by the exact
statement (the recording fake of tests/test_load_redshift.py, every statement
parsed with sqlglot's redshift dialect) and, where the SQL is PostgreSQL's too,
run on the real PostgreSQL. docs/types.md cites the documented rule of each."""

from __future__ import annotations

import logging
import secrets
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
import sqlglot
from conftest import PG_DSN
from load_kit import SETTINGS, Lake, batch, col
from test_load_redshift import (  # noqa: F401 - fake and lake are fixtures
    BID,
    S3_ROOT,
    STAGE,
    FakeRedshift,
    fake,
    lake,
    parse_all,
    rs_target,
    stage_batch,
)

from lakeshift.config.models import S3Storage
from lakeshift.errors import ConnectionFailed, LoadError, LockBusyError
from lakeshift.load import open_target
from lakeshift.load.redshift import LOCK_VIEWER, SESSION_SETUP
from lakeshift.load.redshift_copy import LOAD_ERROR, copy_failure
from lakeshift.load.types import REDSHIFT_VARBYTE_MAX


def loader_for(fake: FakeRedshift, **target: Any) -> Any:
    loader = open_target(rs_target(**target), SETTINGS, connection_factory=fake.connect, lock_timeout=0)
    loader.state.ready = True
    return loader


# ---------------------------------------------------------------- VARBYTE


def test_varbyte_up_to_16_mb_and_an_unknown_length_is_unchanged(fake: FakeRedshift, lake: Lake) -> None:
    assert REDSHIFT_VARBYTE_MAX == 16_777_216
    cols = [col("id", pa.int64()), col("b", pa.binary(), "longblob", "longblob"),
            col("g", pa.binary(), "geometry", "geometry")]
    m, paths = batch(lake, cols, [{"id": [1], "b": [b"\x00" * 10], "g": [None]}], bid=BID)
    fake.staged_rows = 1
    stage_batch(loader_for(fake), lake, m, paths).commit(m)
    stmts = fake.statements()
    assert 'CREATE TABLE "analytics"."t" ("id" BIGINT, "b" VARBYTE(16777216), "g" VARBYTE(16777216))' in stmts
    assert f'CREATE TEMP TABLE {STAGE} ("id" BIGINT, "b" VARBYTE(16777216), "g" VARBYTE(16777216))' in stmts
    parse_all(stmts)
    # information_schema reports no length for these VARBYTE columns: not "incompatible", nothing altered
    again = FakeRedshift()
    again.columns["t"] = [("id", "bigint", None, 64, 0), ("b", "binary varying", None, None, None),
                          ("g", "varbyte", None, None, None)]
    again.staged_rows = 1
    assert stage_batch(loader_for(again), lake, m, paths).commit(m).status == "loaded"
    assert not any(s.startswith(("ALTER", 'CREATE TABLE "analytics"', 'DROP TABLE "analytics"'))
                   for s in again.statements())


# ---------------------------------------------------------------- sessions and timestamps


class _RecordingConnection:
    def __init__(self, fail: str | None = None) -> None:
        self.executed: list[str] = []
        self.closed = False
        self.fail = fail

    def execute(self, statement: str) -> None:
        if self.fail and self.fail in statement:
            raise psycopg.errors.UndefinedObject(f'unrecognized configuration parameter "{self.fail}"')
        self.executed.append(statement)

    def close(self) -> None:
        self.closed = True


def test_every_session_is_utc_and_folds_names_to_lower_case(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SESSION_SETUP == ("SET timezone TO 'UTC'", "SET enable_case_sensitive_identifier TO false")
    parse_all(list(SESSION_SETUP))
    conn = _RecordingConnection()
    monkeypatch.setattr(psycopg, "connect", lambda **kw: conn)
    loader = open_target(rs_target(), SETTINGS)
    loader.connect()
    assert conn.executed == list(SESSION_SETUP) and not conn.closed
    # a session that cannot be set up is not used
    bad = _RecordingConnection(fail="enable_case_sensitive_identifier")
    monkeypatch.setattr(psycopg, "connect", lambda **kw: bad)
    with pytest.raises(ConnectionFailed, match="enable_case_sensitive_identifier"):
        open_target(rs_target(), SETTINGS).connect()
    assert bad.closed


def test_a_mysql_timestamp_is_staged_as_timestamp_and_converted_in_the_insert(fake: FakeRedshift, lake: Lake) -> None:
    cols = [col("id", pa.int64()), col("at", pa.timestamp("us", tz="UTC"), "timestamp", "timestamp"),
            col("dt", pa.timestamp("us"))]
    at = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    m, paths = batch(lake, cols, [{"id": [1], "at": [at], "dt": [None]}], bid=BID, mode="append")
    fake.staged_rows = 1
    stage_batch(loader_for(fake), lake, m, paths).commit(m)
    stmts = fake.statements()
    assert ('CREATE TABLE "analytics"."t" ("id" BIGINT, "at" TIMESTAMPTZ, "dt" TIMESTAMP, '
            '"_lakeshift_batch_id" VARCHAR(128))') in stmts
    assert f'CREATE TEMP TABLE {STAGE} ("id" BIGINT, "at" TIMESTAMP, "dt" TIMESTAMP)' in stmts
    assert (f'INSERT INTO "analytics"."t" ("id", "at", "dt", "_lakeshift_batch_id") SELECT "_lakeshift_s"."id", '
            f'"_lakeshift_s"."at" AT TIME ZONE \'UTC\', "_lakeshift_s"."dt", %s FROM {STAGE} AS "_lakeshift_s"') in stmts
    parse_all(stmts)


def test_the_timestamp_conversion_does_not_depend_on_the_session_time_zone() -> None:
    """The same expression on PostgreSQL, in a session whose zone is not UTC."""
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute("SET timezone TO 'America/New_York'")
        got = conn.execute("""SELECT "s"."at" AT TIME ZONE 'UTC' FROM (SELECT TIMESTAMP '2026-01-01 12:00:00' """
                           """AS "at") AS "s" """).fetchone()[0]
    assert got == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- COPY: credentials and errors

SPECTRUM_ERROR = """Spectrum Scan Error
DETAIL:
  -----------------------------------------------
  error:  Spectrum Scan Error
  code:      15007
  context:   File 'https://s3.us-east-1.amazonaws.com/bucket/lake/t/part-00000.parquet' has an incompatible Parquet schema for column 's3://bucket/lake/t/part-00000.parquet.u64'. Column type: DECIMAL(20,0), Parquet schema:
optional int64 u64 [i:0 d:1 r:0]

  query:     1234567
  location:  dory_util.cpp:1615
  process:   worker_thread [pid=13570]
  -----------------------------------------------
"""


def test_a_failed_copy_shows_redshifts_detail_on_one_line(fake: FakeRedshift, lake: Lake) -> None:
    m, paths = batch(lake, [col("id", pa.int64())], [{"id": [1]}], bid=BID)
    fake.fail_on = ("COPY", SPECTRUM_ERROR)
    with pytest.raises(LoadError) as err:
        stage_batch(loader_for(fake), lake, m, paths).commit(m)
    text = str(err.value)
    assert "\n" not in text
    assert text == (
        f"COPY of batch {BID} failed: Spectrum Scan Error; code: 15007; context: File "
        "'https://s3.us-east-1.amazonaws.com/bucket/lake/t/part-00000.parquet' has an incompatible Parquet schema for "
        "column 's3://bucket/lake/t/part-00000.parquet.u64'. Column type: DECIMAL(20,0), Parquet schema: optional "
        "int64 u64 [i:0 d:1 r:0]; query: 1234567; location: dory_util.cpp:1615")
    stmts = fake.statements()
    copy = next(i for i, s in enumerate(stmts) if s.startswith("COPY"))
    assert stmts[copy + 1:copy + 3] == ["ROLLBACK", LOAD_ERROR]  # nothing runs in a failed transaction
    assert LOAD_ERROR == ("SELECT TRIM(file_name), TRIM(column_name), TRIM(column_type), error_code, "
                          "TRIM(error_message) FROM sys_load_error_detail WHERE session_id = pg_backend_pid() "
                          "ORDER BY start_time DESC LIMIT 1")
    assert "COMMIT" not in stmts
    parse_all(stmts)


def test_a_failed_copy_shows_its_sys_load_error_detail_row(fake: FakeRedshift, lake: Lake) -> None:
    m, paths = batch(lake, [col("id", pa.int64())], [{"id": [1]}], bid=BID)
    fake.fail_on = ("COPY", "Load into table '_ls_stage_5771aa7f165f8b1b8f85d446' failed. Check "
                            "'sys_load_error_detail' system table for details.")
    answer = fake.respond
    row = ("s3://bucket/lake/t/part-00000.parquet", "id", "int8", 1216, "Invalid digit, Value 'x', Pos 0")
    fake.respond = lambda stmt, params: ([row], 1) if stmt == LOAD_ERROR else answer(stmt, params)
    with pytest.raises(LoadError) as err:
        stage_batch(loader_for(fake), lake, m, paths).commit(m)
    assert str(err.value) == (
        f"COPY of batch {BID} failed: Load into table '_ls_stage_5771aa7f165f8b1b8f85d446' failed. Check "
        "'sys_load_error_detail' system table for details.; SYS_LOAD_ERROR_DETAIL: Invalid digit, Value 'x', Pos 0 "
        "(file s3://bucket/lake/t/part-00000.parquet, column id int8, code 1216)")
    # without a row (or when the view cannot be read) the driver's lines stay, joined
    assert copy_failure(BID, "S3ServiceException:Access Denied\nDETAIL: bucket policy\n") == (
        f"COPY of batch {BID} failed: S3ServiceException:Access Denied DETAIL: bucket policy")


def test_static_keys_in_the_credentials_string_never_shown(fake: FakeRedshift, lake: Lake,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY=" + secrets.token_hex(4)
    token = "IQoJb3JpZ2luX2VjE" + secrets.token_hex(8) + "=="
    storage = S3Storage(type="s3", bucket="bucket", access_key_id="AKIAREADINESS0001", secret_access_key=secret,
                        session_token=token)
    m, paths = batch(lake, [col("id", pa.int64())], [{"id": [1]}], bid=BID)
    caplog.set_level(logging.DEBUG)
    fake.fail_on = ("COPY", SPECTRUM_ERROR + "statement: COPY ... CREDENTIALS "
                    f"'aws_access_key_id=AKIAREADINESS0001;aws_secret_access_key={secret};token={token}'")
    loader = open_target(rs_target(iam_role=None), SETTINGS, lake_credentials=storage, connection_factory=fake.connect)
    loader.state.ready = True
    with pytest.raises(LoadError) as err:
        stage_batch(loader, lake, m, paths).commit(m)
    copy = next(s for s in fake.statements() if s.startswith("COPY"))
    assert copy == (f"COPY {STAGE} FROM '{S3_ROOT}/t/{BID}/_{BID}.copy-manifest' CREDENTIALS "
                    f"'aws_access_key_id=AKIAREADINESS0001;aws_secret_access_key={secret};token={token}' "
                    "FORMAT AS PARQUET MANIFEST")
    assert isinstance(sqlglot.parse_one(copy, read="redshift"), sqlglot.exp.Copy)
    shown = (str(err.value) + repr(err.value) + caplog.text + "".join(traceback.format_exception(err.value))
             + str(err.value.__context__))
    assert secret not in shown and token not in shown and "Spectrum Scan Error" in str(err.value)


def test_without_role_or_storage_keys_the_copy_takes_the_aws_credential_chain(
        fake: FakeRedshift, lake: Lake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = "FwoGZXIvYXdzE" + secrets.token_hex(8)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIACHAINKEY0000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain/secret+" + secrets.token_hex(4))
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    m, paths = batch(lake, [col("id", pa.int64())], [{"id": [1]}], bid=BID)
    fake.staged_rows = 1
    loader = open_target(rs_target(iam_role=None), SETTINGS, lake_credentials=S3Storage(type="s3", bucket="bucket"),
                         connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    copy = next(s for s in fake.statements() if s.startswith("COPY"))
    assert "CREDENTIALS 'aws_access_key_id=ASIACHAINKEY0000001;aws_secret_access_key=chain/secret+" in copy
    assert copy.endswith(f";token={token}' FORMAT AS PARQUET MANIFEST")
    # an empty chain: one line, nothing sent
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    empty = FakeRedshift()
    loader = open_target(rs_target(iam_role=None), SETTINGS, connection_factory=empty.connect)
    loader.state.ready = True
    with pytest.raises(LoadError, match=r"^COPY needs `iam_role` .* the AWS credential chain .* has none$"):
        stage_batch(loader, lake, m, paths).commit(m)
    assert not any(s.startswith("COPY") for s in empty.statements())


# ---------------------------------------------------------------- JSON documents


def test_a_json_document_over_65535_bytes_is_refused_before_the_copy(fake: FakeRedshift, lake: Lake) -> None:
    cols = [col("id", pa.int64()), col("doc", pa.string(), "json", "json")]
    big = '{"k": "' + "é" * 32_764 + '"}'  # 32,771 characters, 65,537 bytes
    fits = '{"k": "' + "x" * 65_526 + '"}'  # 65,535 bytes: the most VARCHAR(65535) holds
    m, paths = batch(lake, cols, [{"id": [1], "doc": [fits]}, {"id": [2], "doc": [big]}], bid=BID)
    staged = loader_for(fake).begin(m, "t")
    staged.add_part(paths[0], lake.fs, S3_ROOT + paths[0][len(str(lake.root)):], m.files[0])
    uri = S3_ROOT + paths[1][len(str(lake.root)):]
    with pytest.raises(LoadError) as err:
        staged.add_part(paths[1], lake.fs, uri, m.files[1])
    assert str(err.value).startswith(f"column 'doc': a JSON document of 65,537 bytes in {uri}; Redshift's COPY from "
                                     "Parquet stages JSON as VARCHAR, at most 65,535 bytes")
    staged.abort()
    assert not any(s.startswith("COPY") for s in fake.statements())


# ---------------------------------------------------------------- the load lock's liveness


def _lock_once(fake: FakeRedshift) -> bool:
    try:
        with loader_for(fake).lock("pipe", "t"):
            return True
    except LockBusyError:
        return False


def test_another_users_lease_is_never_taken_as_dead(fake: FakeRedshift) -> None:
    L = '"analytics"."_lakeshift_locks"'
    fake.alive = 0  # STV_SESSIONS shows a regular user only its own sessions: the holder is not listed
    fake.holders = [(4242, "etl_other")]
    assert not _lock_once(fake)
    assert (LOCK_VIEWER, None) in fake.log
    assert f'DELETE FROM {L} WHERE "pipeline" = %s AND "table_name" = %s' not in fake.statements()
    assert not any(s.startswith("INSERT") for s in fake.statements())
    parse_all(fake.statements())
    fake.holders = [(4242, None)]  # a lease from a release that did not record its holder
    assert not _lock_once(fake)
    fake.holders = [(4242, "loader")]  # our own user's session: STV_SESSIONS would show it, so it is gone
    assert _lock_once(fake)
    fake.log.clear()
    fake.holders, fake.user = [(4242, "etl_other")], ("admin", True)  # a superuser sees every session
    assert _lock_once(fake)
    assert f'DELETE FROM {L} WHERE "pipeline" = %s AND "table_name" = %s' in fake.statements()


def test_the_viewer_query_runs_on_postgresql(pg: Any) -> None:
    """As the rest of the lease SQL (test_load_redshift.py runs it on PostgreSQL)."""
    me, sees_all = pg.execute(LOCK_VIEWER).fetchone()
    assert me == "postgres" and sees_all is True
