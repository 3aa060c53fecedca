"""Redshift: no cluster is reachable here, so

- a fake connection records every statement: the exact SQL is asserted and
  every statement must parse with sqlglot's redshift dialect;
- the same loader, pointed at the real PostgreSQL through a proxy that
  emulates only COPY (from the COPY manifest the loader wrote), proves that the
  DDL, merge, replace, append, state and lock SQL Redshift gets really runs;
- `-m redshift` runs the whole path on a real cluster when REDSHIFT_* are set."""

from __future__ import annotations

import json
import logging
import os
import secrets
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from kit.redshift import FakeRedshift, PgProxy
from lake_profile_kit import assert_copy_accepts, staging_columns
from load_kit import SETTINGS, Lake, batch, col, manifest, ucol

from lakeshift.batch import BatchFile, Cursor
from lakeshift.config.models import RedshiftTarget, S3Storage
from lakeshift.errors import LoadError, LockBusyError, SchemaChangeError
from lakeshift.load import open_target
from lakeshift.load.redshift import copy_manifest, literal

ROLE = "arn:aws:iam::123456789012:role/lakeshift-copy"
BID = "20260101T000000000001Z-aaaaaa"
STAGE = '"_ls_stage_5771aa7f165f8b1b8f85d446"'  # sha256 of pipe/t/BID
S3_ROOT = "s3://bucket/lake"


def rs_target(**kw: Any) -> RedshiftTarget:
    base = dict(type="redshift", host="rs.example", database="dev", username="loader", password="pw-Redshift-1",
                schema="analytics", iam_role=ROLE)
    return RedshiftTarget(**{**base, **kw})


@pytest.fixture
def fake() -> FakeRedshift:
    return FakeRedshift()


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


def s3_uri(lake: Lake, path: str) -> str:
    return S3_ROOT + path[len(str(lake.root)):]


def stage_batch(loader: Any, lake: Lake, m: Any, paths: list[str], target: str = "t") -> Any:
    staged = loader.begin(m, target)
    for p, f in zip(paths, m.files):
        staged.add_part(p, lake.fs, s3_uri(lake, p), f)
    return staged


def parse_all(statements: list[str]) -> None:
    """Every statement must parse as Redshift SQL; only LOCK falls back to a raw command."""
    for stmt in statements:
        tree = sqlglot.parse_one(stmt, read="redshift")
        if isinstance(tree, sqlglot.exp.Command):
            assert stmt.startswith("LOCK "), stmt


COLS = [col("id", pa.int64()), col("name", pa.string(), "varchar(20)", "varchar"), col("ts", pa.timestamp("us")),
        col("doc", pa.string(), "json", "json")]
DATA = [{"id": [1, 2], "name": ["a", "b"], "ts": [None, None], "doc": ["{}", "[]"]},
        {"id": [3], "name": ["c"], "ts": [None], "doc": ["1"]}]

LOADS_SELECT = ('SELECT "pipeline", "table_name", "batch_id", "target_table", "mode", "rows", "files", "bytes", '
                '"watermark_low", "watermark_high", "loaded_at", "note", "deleted" FROM "analytics"."_lakeshift_loads" '
                'WHERE "pipeline" = %s AND "table_name" = %s AND "batch_id" = %s ORDER BY "batch_id"')
COLUMNS_SELECT = ("SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
                  "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position")
STATE_COLUMNS_SELECT = ("SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = %s AND table_name IN (%s, %s, %s)")
INSERT_LOAD = ('INSERT INTO "analytics"."_lakeshift_loads" ("pipeline", "table_name", "batch_id", "target_table", '
               '"mode", "rows", "files", "bytes", "watermark_low", "watermark_high", "loaded_at", "note", "deleted") '
               "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


def test_merge_batch_exact_sql(fake, lake):
    m, paths = batch(lake, COLS, DATA, bid=BID, ts="ts")
    fake.staged_rows = 3
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True  # state DDL is asserted in its own test
    result = stage_batch(loader, lake, m, paths).commit(m)
    assert (result.status, result.rows) == ("loaded", 5)  # the fake reports 5 rows per DML
    manifest_uri = f"{S3_ROOT}/t/{BID}/_{BID}.copy-manifest"
    assert fake.log[:-1] == [
        (LOADS_SELECT, ("pipe", "t", BID)),
        (COLUMNS_SELECT, ("analytics", "t")),
        ("BEGIN", None),
        (LOADS_SELECT, ("pipe", "t", BID)),
        ('CREATE TABLE "analytics"."t" ("id" BIGINT, "name" VARCHAR(80), "ts" TIMESTAMP, "doc" SUPER)', None),
        (f'CREATE TEMP TABLE {STAGE} ("id" BIGINT, "name" VARCHAR(65535), "ts" TIMESTAMP, "doc" VARCHAR(65535))',
         None),
        (f"COPY {STAGE} FROM '{manifest_uri}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET MANIFEST", None),
        (f"SELECT COUNT(*) FROM {STAGE}", None),
        ('INSERT INTO "analytics"."t" ("id", "name", "ts", "doc") SELECT "_lakeshift_s"."id", "_lakeshift_s"."name", "_lakeshift_s"."ts", '
         'JSON_PARSE("_lakeshift_s"."doc") FROM (SELECT "id", "name", "ts", "doc", ROW_NUMBER() OVER (PARTITION BY "id" '
         f'ORDER BY "ts" DESC NULLS LAST) AS "_lakeshift_rn" FROM {STAGE}) AS "_lakeshift_s" WHERE "_lakeshift_s"."_lakeshift_rn" = 1', None),
        (INSERT_LOAD, fake.log[9][1]),
        (f"DROP TABLE IF EXISTS {STAGE}", None),
        ("COMMIT", None),
    ]
    params = fake.log[9][1]
    assert params[:10] == ("pipe", "t", BID, "t", "merge", 5, 2, m.bytes, None, None)
    assert isinstance(params[10], datetime) and params[10].tzinfo is not None
    assert fake.log[-1] == ("<close>", None)  # the TEMP staging goes with its session
    parse_all(fake.statements())
    # the COPY manifest: every part with its real size (Parquet COPY needs meta.content_length)
    written = json.loads((lake.root / "t" / BID / f"_{BID}.copy-manifest").read_text())
    assert written == {"entries": [
        {"url": s3_uri(lake, p), "mandatory": True, "meta": {"content_length": os.path.getsize(p)}} for p in paths]}


def commit_into_existing(fake: Any, lake: Lake, m: Any, paths: list[str],
                         columns: list[tuple[Any, ...]]) -> tuple[list[str], int]:
    """Commit a batch into an existing target table "t" with `columns` (information_schema
    rows); the statements sent, and the index of staging's row count among them."""
    fake.columns["t"] = columns
    fake.staged_rows = m.rows
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    stmts = fake.statements()
    return stmts, stmts.index(f"SELECT COUNT(*) FROM {STAGE}")


def test_merge_into_an_existing_table_deletes_matching_keys_first(fake, lake):
    m, paths = batch(lake, COLS[:2], [{"id": [1], "name": ["a"]}], bid=BID)
    stmts, i = commit_into_existing(fake, lake, m, paths, [("id", "bigint", None, 64, 0),
                                                          ("name", "character varying", 80, None, None)])
    assert stmts[i + 1] == (f'DELETE FROM "analytics"."t" USING {STAGE} AS "_lakeshift_s" '
                            'WHERE "analytics"."t"."id" = "_lakeshift_s"."id"')
    assert stmts[i + 2].startswith('INSERT INTO "analytics"."t" ("id", "name") SELECT "_lakeshift_s"."id", "_lakeshift_s"."name" FROM (')
    assert not any(s.startswith(("CREATE TABLE \"analytics\"", "ALTER")) for s in stmts)
    parse_all(stmts)


def test_replace_is_delete_plus_insert_in_one_transaction_never_truncate(fake, lake):
    m, paths = batch(lake, COLS[:2], [{"id": [1], "name": ["a"]}], bid=BID, mode="replace", key=())
    fake.columns["t"] = [("id", "bigint", None, 64, 0), ("name", "character varying", 80, None, None)]
    fake.staged_rows = 1
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    stmts = fake.statements()
    assert not any("TRUNCATE" in s.upper() for s in stmts)
    begin, commit = stmts.index("BEGIN"), stmts.index("COMMIT")
    delete = stmts.index('DELETE FROM "analytics"."t"')
    insert = stmts.index(f'INSERT INTO "analytics"."t" ("id", "name") SELECT "_lakeshift_s"."id", "_lakeshift_s"."name" FROM {STAGE} AS "_lakeshift_s"')
    assert begin < delete < insert < stmts.index(INSERT_LOAD) < commit
    parse_all(stmts)


def test_append_tags_the_batch_id(fake, lake):
    m, paths = batch(lake, COLS[:2], [{"id": [1], "name": ["a"]}], bid=BID, mode="append")
    fake.staged_rows = 1
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    assert ('CREATE TABLE "analytics"."t" ("id" BIGINT, "name" VARCHAR(80), "_lakeshift_batch_id" VARCHAR(128))',
            None) in fake.log
    assert (f'INSERT INTO "analytics"."t" ("id", "name", "_lakeshift_batch_id") SELECT "_lakeshift_s"."id", "_lakeshift_s"."name", %s '
            f'FROM {STAGE} AS "_lakeshift_s"', (BID,)) in fake.log
    parse_all(fake.statements())


def test_state_tables_and_already_loaded_batches(fake):
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.ensure_state_tables()
    assert fake.statements()[0] == 'CREATE SCHEMA IF NOT EXISTS "analytics"'
    assert [s.split(" (")[0] for s in fake.statements()[1:4]] == [
        'CREATE TABLE IF NOT EXISTS "analytics"."_lakeshift_loads"',
        'CREATE TABLE IF NOT EXISTS "analytics"."_lakeshift_runs"',
        'CREATE TABLE IF NOT EXISTS "analytics"."_lakeshift_locks"']
    assert fake.statements()[4:] == [STATE_COLUMNS_SELECT]  # up to date: nothing to add
    parse_all(fake.statements())


def test_a_loaded_batch_is_skipped_before_any_copy(fake, lake):
    m, paths = batch(lake, COLS[:2], [{"id": [1], "name": ["a"]}], bid=BID)
    fake.loaded = [("pipe", "t", BID, "t", "merge", 1, 1, 10, None, None, None, None, None)]
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    assert stage_batch(loader, lake, m, paths).commit(m).skipped
    assert fake.statements() == [LOADS_SELECT]


def test_types_in_the_redshift_ddl(fake, lake):
    cols = [ucol("u64", 64), ucol("bits", 64, "bit(8)", "bit"), ucol("u32", 32),
            col("flag", pa.bool_()), col("d", pa.decimal128(38, 10)),
            col("d65", pa.string(), "decimal(65,30)", "decimal", numeric_precision=65, numeric_scale=30,
                lake_encoding="text"),
            col("tm", pa.string(), "time(6)", "time", lake_encoding="text"), col("v", pa.string(), "varchar(255)", "varchar"),
            col("big", pa.string(), "varchar(30000)", "varchar"), col("txt", pa.string(), "text", "text"),
            col("j", pa.string(), "json", "json"), col("b", pa.binary(), "blob", "blob"),
            col("vb", pa.binary(), "varbinary(16)", "varbinary"), col("geo", pa.binary(), "geometry", "geometry"),
            col("dt", pa.timestamp("us")), col("ts", pa.timestamp("us", tz="UTC")), col("day", pa.date32()),
            col("yr", pa.int16(), "year(4)", "year"), col("f", pa.float32())]
    m, paths = batch(lake, cols, [{c.name: [None] for c in cols}], bid=BID, key=("u64",))
    fake.staged_rows = 1
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    stmts = fake.statements()
    assert ('CREATE TABLE "analytics"."t" ("u64" DECIMAL(20,0), "bits" DECIMAL(20,0), "u32" BIGINT, "flag" BOOLEAN, '
            '"d" DECIMAL(38,10), "d65" VARCHAR(67), "tm" VARCHAR(20), "v" VARCHAR(1020), "big" VARCHAR(65535), '
            '"txt" VARCHAR(65535), "j" SUPER, "b" VARBYTE(65535), "vb" VARBYTE(16), "geo" VARBYTE(16777216), '
            '"dt" TIMESTAMP, "ts" TIMESTAMPTZ, "day" DATE, "yr" SMALLINT, "f" REAL)') in stmts
    # staging mirrors the Parquet columns (COPY maps them by position)
    assert (f'CREATE TEMP TABLE {STAGE} ("u64" DECIMAL(20,0), "bits" DECIMAL(20,0), "u32" BIGINT, "flag" BOOLEAN, '
            '"d" DECIMAL(38,10), "d65" VARCHAR(65535), "tm" VARCHAR(65535), "v" VARCHAR(65535), "big" VARCHAR(65535), '
            '"txt" VARCHAR(65535), "j" VARCHAR(65535), "b" VARBYTE(16777216), "vb" VARBYTE(16777216), '
            '"geo" VARBYTE(16777216), "dt" TIMESTAMP, "ts" TIMESTAMP, "day" DATE, "yr" SMALLINT, "f" REAL)') in stmts
    create = next(st for st in stmts if st.startswith("CREATE TEMP TABLE"))
    assert_copy_accepts(staging_columns(create), pq.ParquetFile(paths[0]).schema, paths[0])  # exactly the Parquet types
    parse_all(stmts)


def test_varchar_widening_runs_before_the_transaction_and_other_widenings_are_refused(fake, lake):
    cols = [col("id", pa.int64()), col("name", pa.string(), "varchar(20)", "varchar"), col("extra", pa.int32())]
    m, paths = batch(lake, cols, [{"id": [1], "name": ["a"], "extra": [1]}], bid=BID)
    fake.columns["t"] = [("id", "bigint", None, 64, 0), ("name", "character varying", 40, None, None)]
    fake.staged_rows = 1
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    stmts = fake.statements()
    alter = stmts.index('ALTER TABLE "analytics"."t" ALTER COLUMN "name" TYPE VARCHAR(80)')
    add = stmts.index('ALTER TABLE "analytics"."t" ADD COLUMN "extra" INTEGER')
    assert alter < stmts.index("BEGIN") < add  # Redshift cannot ALTER COLUMN TYPE in a transaction block
    parse_all(stmts)

    fake2 = FakeRedshift()
    fake2.columns["t"] = [("id", "integer", None, 32, 0)]
    m2, p2 = batch(lake, cols[:1], [{"id": [1]}], bid=BID)
    loader2 = open_target(rs_target(), SETTINGS, connection_factory=fake2.connect)
    loader2.state.ready = True
    with pytest.raises(SchemaChangeError, match=r"Redshift table analytics\.t: column 'id' is INTEGER but the source "
                                                r"now needs BIGINT .*cannot apply in place.*full_sync"):
        stage_batch(loader2, lake, m2, p2).commit(m2)
    assert "BEGIN" not in fake2.statements()


def _recreate_case(fake: FakeRedshift, lake: Lake) -> tuple[Any, Any]:
    """A full_sync batch whose `id` became BIGINT, which Redshift cannot apply in place (and a VARCHAR
    it could widen, which the recreated table takes as it is)."""
    cols = [col("id", pa.int64()), col("name", pa.string(), "varchar(20)", "varchar")]
    m, paths = batch(lake, cols, [{"id": [1], "name": ["a"]}], bid=BID, mode="replace", key=())
    fake.columns["t"] = [("id", "integer", None, 32, 0), ("name", "character varying", 40, None, None)]
    fake.staged_rows = 1
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    return stage_batch(loader, lake, m, paths), m


def test_a_full_sync_batch_the_table_cannot_take_recreates_it_in_the_transaction(fake, lake):
    staged, m = _recreate_case(fake, lake)
    result = staged.commit(m)
    stmts = fake.statements()
    views = next(i for i, s in enumerate(stmts) if "pg_rewrite" in s)
    assert fake.log[views][1] == ("analytics", "t")
    order = [stmts.index(s) for s in (
        "BEGIN", stmts[views], 'DROP TABLE "analytics"."t"',
        'CREATE TABLE "analytics"."t" ("id" BIGINT, "name" VARCHAR(80))', 'DELETE FROM "analytics"."t"', INSERT_LOAD,
        "COMMIT")]
    assert order == sorted(order)
    assert not any(s.startswith("ALTER") for s in stmts)
    assert result.notes == ("table recreated for the new column types (column 'id' INTEGER -> BIGINT); indexes, "
                            "grants or triggers made on it by hand must be made again",)
    parse_all(stmts)


def test_a_view_on_the_table_to_recreate_stops_the_batch_naming_it(fake, lake):
    staged, m = _recreate_case(fake, lake)
    answer = fake.respond
    views = [("analytics", "t_daily"), ("reports", "t_top")]
    fake.respond = lambda stmt, params: (views, -1) if "pg_rewrite" in stmt else answer(stmt, params)
    with pytest.raises(SchemaChangeError, match=r"^Redshift table analytics\.t: column 'id' INTEGER -> BIGINT \(batch "
                                                r".*views analytics\.t_daily, reports\.t_top depend on it, so the batch "
                                                r"was not loaded\. Way out: drop the views, sync again, then create them "
                                                r"again\.$"):
        staged.commit(m)
    stmts = fake.statements()
    assert "ROLLBACK" in stmts and "COMMIT" not in stmts
    assert not any(s.startswith(("DROP TABLE \"analytics\"", "CREATE TABLE \"analytics\"")) for s in stmts)


def test_static_keys_only_without_a_role_and_never_shown(fake, lake, caplog):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + secrets.token_hex(4)
    token = "FwoGZXIvYXdzE" + secrets.token_hex(8)
    storage = S3Storage(type="s3", bucket="bucket", access_key_id="AKIAEXAMPLE123", secret_access_key=secret,
                        session_token=token)
    m, paths = batch(lake, COLS[:2], [{"id": [1], "name": ["a"]}], bid=BID)
    fake.staged_rows = 1
    loader = open_target(rs_target(iam_role=None), SETTINGS, lake_credentials=storage, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    copy = next(s for s in fake.statements() if s.startswith("COPY"))
    assert copy == (f"COPY {STAGE} FROM '{S3_ROOT}/t/{BID}/_{BID}.copy-manifest' CREDENTIALS "
                    f"'aws_access_key_id=AKIAEXAMPLE123;aws_secret_access_key={secret};token={token}' "
                    "FORMAT AS PARQUET MANIFEST")
    parse_all([copy])
    # a failing COPY whose driver error quotes the credentials: the error shown has none
    caplog.set_level(logging.DEBUG)
    fake2 = FakeRedshift()
    fake2.staged_rows = 1
    fake2.fail_on = ("COPY", f"S3ServiceException: denied for SECRET_ACCESS_KEY '{secret}' token {token}")
    loader2 = open_target(rs_target(iam_role=None), SETTINGS, lake_credentials=storage, connection_factory=fake2.connect)
    loader2.state.ready = True
    with pytest.raises(LoadError) as err:
        stage_batch(loader2, lake, m, paths).commit(m)
    import traceback

    shown = str(err.value) + repr(err.value) + caplog.text + "".join(traceback.format_exception(err.value))
    shown += str(err.value.__context__)  # not printed (raised `from None`), but scrubbed too
    assert secret not in shown and token not in shown and "S3ServiceException" in str(err.value)
    assert "ROLLBACK" in fake2.statements()
    # with a role, the keys are not used even when configured
    fake3 = FakeRedshift()
    fake3.staged_rows = 1
    loader3 = open_target(rs_target(), SETTINGS, lake_credentials=storage, connection_factory=fake3.connect)
    loader3.state.ready = True
    stage_batch(loader3, lake, m, paths).commit(m)
    assert not any(secret in s or "aws_access_key_id" in s for s in fake3.statements())


def test_no_role_and_no_keys_is_a_clear_error(fake, lake, monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)  # nor any in the AWS credential chain
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    m, paths = batch(lake, COLS[:2], [{"id": [1], "name": ["a"]}], bid=BID)
    loader = open_target(rs_target(iam_role=None), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    with pytest.raises(LoadError, match="COPY needs `iam_role` on the Redshift target"):
        stage_batch(loader, lake, m, paths).commit(m)


def test_copy_literals_refuse_quotes():
    assert literal("s3://b/k", "x") == "'s3://b/k'"
    with pytest.raises(LoadError) as err:
        literal("abc'; DROP TABLE x; --", "secret key")
    assert "DROP" not in str(err.value)
    assert json.loads(copy_manifest([("s3://b/a", 3)]))["entries"][0]["meta"] == {"content_length": 3}


def test_parts_must_be_in_s3(fake, lake):
    m, paths = batch(lake, COLS[:2], [{"id": [1], "name": ["a"]}], bid=BID)
    staged = open_target(rs_target(), SETTINGS, connection_factory=fake.connect).begin(m, "t")
    with pytest.raises(LoadError, match="S3 only"):
        staged.add_part(paths[0], lake.fs, "file://" + paths[0], m.files[0])


def test_lock_lease_sql(fake):
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect, lock_timeout=0)
    loader.state.ready = True
    with loader.lock("pipe", "t"):
        pass
    L = '"analytics"."_lakeshift_locks"'
    assert fake.statements() == [
        "BEGIN", f"LOCK {L}",
        f'SELECT "pid", "holder" FROM {L} WHERE "pipeline" = %s AND "table_name" = %s',
        f'INSERT INTO {L} ("pipeline", "table_name", "pid", "holder", "acquired_at") '
        "VALUES (%s, %s, pg_backend_pid(), current_user, %s)",
        "COMMIT",
        f'DELETE FROM {L} WHERE "pipeline" = %s AND "table_name" = %s AND "pid" = pg_backend_pid()',
    ]
    parse_all(fake.statements())
    fake.log.clear()
    fake.holders, fake.alive = [(4242, "loader")], 1  # held by a live session
    with pytest.raises(LockBusyError, match="another lakeshift run is loading"):
        with loader.lock("pipe", "t"):
            pass
    assert "ROLLBACK" in fake.statements() and not any(s.startswith("INSERT") for s in fake.statements())
    fake.log.clear()
    fake.alive = 0  # the holder (the same user: STV_SESSIONS would show it) died: its lease is taken over
    with loader.lock("pipe", "t"):
        pass
    assert f'DELETE FROM {L} WHERE "pipeline" = %s AND "table_name" = %s' in fake.statements()
    assert ("SELECT COUNT(*) FROM stv_sessions WHERE process IN (%s)", (4242,)) in fake.log


def test_the_copy_manifest_in_an_s3_lake_honours_server_side_encryption(fake, s3_endpoint, s3_bucket, s3_storage):
    import boto3
    import pyarrow.fs as pafs

    storage = S3Storage(**{**s3_storage, "server_side_encryption": "AES256"})
    fs = pafs.S3FileSystem(access_key=storage.access_key_id.get_secret_value(),
                           secret_key=storage.secret_access_key.get_secret_value(), region="us-east-1",
                           endpoint_override=s3_endpoint, scheme="http")
    key = f"{s3_bucket}/lake/pipe/t/{BID}/part-00000.parquet"
    pq.write_table(pa.table({"id": [1, 2]}), key, filesystem=fs)
    m = manifest([col("id", pa.int64())], [BatchFile(f"pipe/t/{BID}/part-00000.parquet", 2, 0)], bid=BID)
    fake.staged_rows = 2
    loader = open_target(rs_target(), SETTINGS, lake_credentials=storage, connection_factory=fake.connect)
    loader.state.ready = True
    staged = loader.begin(m, "t")
    staged.add_part(key, fs, f"s3://{key}", m.files[0])
    staged.commit(m)
    url = f"s3://{s3_bucket}/lake/pipe/t/{BID}/_{BID}.copy-manifest"
    assert f"COPY {STAGE} FROM '{url}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET MANIFEST" in fake.statements()
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id=storage.access_key_id.get_secret_value(),
                      aws_secret_access_key=storage.secret_access_key.get_secret_value())
    obj = s3.get_object(Bucket=s3_bucket, Key=f"lake/pipe/t/{BID}/_{BID}.copy-manifest")
    assert obj["ServerSideEncryption"] == "AES256"
    assert json.loads(obj["Body"].read()) == {"entries": [
        {"url": f"s3://{key}", "mandatory": True, "meta": {"content_length": fs.get_file_info(key).size}}]}


# ---------------------------------------------------------------- the same SQL on a real PostgreSQL


def test_redshift_sql_runs_for_real_on_postgresql(pg_schema, pg, lake):
    pg.execute(f'CREATE SCHEMA "{pg_schema}"')
    # Redshift's session list, for the lock lease
    pg.execute(f'CREATE VIEW "{pg_schema}".stv_sessions AS SELECT pid AS process FROM pg_stat_activity')
    log: list[str] = []
    target = rs_target(schema=pg_schema)

    def opener(timeout: float = 5) -> Any:
        return open_target(target, SETTINGS, connection_factory=lambda: PgProxy(lake.root, S3_ROOT, pg_schema, log),
                           lock_timeout=timeout)

    loader = opener()
    loader.ensure_state_tables()
    v1 = [col("id", pa.int64()), col("name", pa.string(), "varchar(10)", "varchar"),
          col("amount", pa.decimal128(12, 2)), ucol("u", 64), ucol("u32", 32), col("flag", pa.bool_()),
          col("day", pa.date32()), col("at", pa.timestamp("us", tz="UTC")), col("x", pa.float64()),
          col("tm", pa.string(), "time(6)", "time", lake_encoding="text")]
    at = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    row = {"amount": [Decimal("1.50")], "u": [2**64 - 1], "u32": [2**32 - 1], "flag": [True],
           "day": [date(2026, 1, 1)], "at": [at], "x": [0.1], "tm": ["-838:59:59.000000"]}
    m1, p1 = batch(lake, v1, [{"id": [1, 2], "name": ["a", "b"], **{k: v * 2 for k, v in row.items()}}], ts="at")
    v2 = [col("id", pa.int64()), col("name", pa.string(), "varchar(30)", "varchar"), col("amount", pa.decimal128(12, 2)),
          ucol("u", 64), ucol("u32", 32), col("flag", pa.bool_()), col("day", pa.date32()),
          col("at", pa.timestamp("us", tz="UTC")), col("x", pa.float64()),
          col("tm", pa.string(), "time(6)", "time", lake_encoding="text"), col("added", pa.int32())]
    m2, p2 = batch(lake, v2, [{"id": [2, 3, 3], "name": ["b-updated-and-longer", "old", "new"],
                               **{k: v * 3 for k, v in row.items()}, "added": [7, 8, 9]}], id_col="added")
    with loader.lock("pipe", "t"):
        with pytest.raises(LockBusyError):  # a second loader, its own session: refused while held
            with opener(timeout=0).lock("pipe", "t"):
                pass
        for m, paths in ((m1, p1), (m2, p2)):
            staged = loader.begin(m, "t")
            for p, f in zip(paths, m.files):
                staged.add_part(p, lake.fs, s3_uri(lake, p), f)
            assert staged.commit(m).status == "loaded"
    rows = pg.execute(f'SELECT id, name, amount, u, u32, flag, day, "at", x, tm, added FROM "{pg_schema}".t ORDER BY id').fetchall()
    base = (Decimal("1.50"), Decimal(2**64 - 1), 2**32 - 1, True, date(2026, 1, 1), at, 0.1, "-838:59:59.000000")
    assert rows == [(1, "a", *base, None), (2, "b-updated-and-longer", *base, 7), (3, "new", *base, 9)]
    types = dict(pg.execute("SELECT column_name, data_type || coalesce('(' || character_maximum_length || ')', '') "
                            "FROM information_schema.columns WHERE table_schema = %s AND table_name = 't'",
                            (pg_schema,)).fetchall())
    assert (types["name"], types["u"], types["tm"]) == ("character varying(120)", "numeric", "character varying(20)")
    assert pg.execute(f'SELECT COUNT(*) FROM "{pg_schema}"._lakeshift_locks').fetchone() == (0,)
    # a killed holder (its pid no longer in the session list) does not block
    pg.execute(f'INSERT INTO "{pg_schema}"._lakeshift_locks VALUES (%s, %s, %s, now())', ("pipe", "t", 2**31 - 7))
    with opener(timeout=0).lock("pipe", "t"):
        pass
    # replace and append on the same SQL
    m3, p3 = batch(lake, v2, [{"id": [9], "name": ["only"], **row, "added": [1]}], mode="replace")
    staged = loader.begin(m3, "t")
    staged.add_part(p3[0], lake.fs, s3_uri(lake, p3[0]), m3.files[0])
    staged.commit(m3)
    assert pg.execute(f'SELECT id, name FROM "{pg_schema}".t').fetchall() == [(9, "only")]
    ev = [col("e", pa.string())]
    m4, p4 = batch(lake, ev, [{"e": ["x", "y"]}], mode="append", table="ev")
    staged = loader.begin(m4, "events")
    staged.add_part(p4[0], lake.fs, s3_uri(lake, p4[0]), m4.files[0])
    assert staged.commit(m4).rows == 2
    assert pg.execute(f'SELECT e, "_lakeshift_batch_id" FROM "{pg_schema}".events ORDER BY e').fetchall() == [
        ("x", m4.batch_id), ("y", m4.batch_id)]
    assert set(loader.loaded_batches("pipe", "t")) == {m1.batch_id, m2.batch_id, m3.batch_id}
    loader.close()
    assert any(s.startswith("COPY") for s in log) and not any("TRUNCATE" in s for s in log)
    parse_all([s for s in log if not s.startswith("SET ")])


# ---------------------------------------------------------------- opt-in: a real cluster

REDSHIFT_VARS = ("REDSHIFT_HOST", "REDSHIFT_USER", "REDSHIFT_PASSWORD", "REDSHIFT_DATABASE", "REDSHIFT_IAM_ROLE",
                 "REDSHIFT_S3_BUCKET")


@pytest.mark.redshift
@pytest.mark.skipif(not all(os.environ.get(v) for v in REDSHIFT_VARS),
                    reason="needs " + ", ".join(REDSHIFT_VARS) + " (REDSHIFT_S3_ACCESS_KEY_ID/SECRET_ACCESS_KEY "
                           "to write the parts; the test rig replaces AWS_* with fake keys)")
def test_real_redshift_cluster(tmp_path):  # pragma: no cover - needs a cluster
    import pyarrow.fs as pafs

    env = os.environ
    schema = "ls_test_" + secrets.token_hex(4)
    fs = pafs.S3FileSystem(access_key=env.get("REDSHIFT_S3_ACCESS_KEY_ID"),
                           secret_key=env.get("REDSHIFT_S3_SECRET_ACCESS_KEY"), region=env.get("REDSHIFT_S3_REGION"))
    prefix = f"{env['REDSHIFT_S3_BUCKET']}/lakeshift-test/{schema}"
    target = RedshiftTarget(type="redshift", host=env["REDSHIFT_HOST"], port=int(env.get("REDSHIFT_PORT", 5439)),
                            database=env["REDSHIFT_DATABASE"], username=env["REDSHIFT_USER"],
                            password=env["REDSHIFT_PASSWORD"], schema=schema, iam_role=env["REDSHIFT_IAM_ROLE"])
    cols = [col("id", pa.int64()), col("name", pa.string(), "varchar(20)", "varchar"), ucol("u", 64),
            col("doc", pa.string(), "json", "json"), col("tm", pa.string(), "time(6)", "time", lake_encoding="text"),
            col("b", pa.binary(), "blob", "blob")]
    loader = open_target(target, SETTINGS)
    try:
        loader.ensure_state_tables()
        for n, (ids, mode) in enumerate((([1, 2, 2], "merge"), ([2, 3], "merge"), ([7], "replace"))):
            data = pa.table({"id": ids, "name": [f"v{n}"] * len(ids), "u": pa.array([2**64 - 1] * len(ids), pa.decimal128(20, 0)),
                             "doc": ['{"a": 1}'] * len(ids), "tm": ["-838:59:59.000000"] * len(ids),
                             "b": [bytes(range(256))] * len(ids)})
            key = f"{prefix}/b{n}/part-0.parquet"
            pq.write_table(data, key, filesystem=fs)
            m = manifest(cols, [BatchFile(f"b{n}/part-0.parquet", len(ids), fs.get_file_info(key).size)], mode=mode)
            with loader.lock(m.pipeline, m.table):
                staged = loader.begin(m, "t")
                staged.add_part(key, fs, f"s3://{key}", m.files[0])
                assert staged.commit(m).status == "loaded"
        with psycopg.connect(host=target.host, port=target.port, dbname=target.database, user=target.username,
                             password=env["REDSHIFT_PASSWORD"], autocommit=True, prepare_threshold=None) as c:
            assert c.execute(f'SELECT id, name, u FROM "{schema}".t').fetchall() == [(7, "v2", Decimal(2**64 - 1))]
            c.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        loader.close()
        fs.delete_dir_contents(prefix, missing_dir_ok=True)


# ---------------------------------------------------------------- state columns of older releases, skip records


def test_state_tables_of_an_older_release_get_the_new_columns(fake):
    fake.state_columns = [("_lakeshift_loads", "pipeline"), ("_lakeshift_runs", "pipeline")]
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.ensure_state_tables()
    assert fake.statements()[4:] == [  # no ADD COLUMN IF NOT EXISTS on Redshift: asked first
        STATE_COLUMNS_SELECT,
        'ALTER TABLE "analytics"."_lakeshift_loads" ADD COLUMN "note" VARCHAR(1024)',
        'ALTER TABLE "analytics"."_lakeshift_runs" ADD COLUMN "notes" VARCHAR(4096)',
        'ALTER TABLE "analytics"."_lakeshift_loads" ADD COLUMN "deleted" BIGINT',
        'ALTER TABLE "analytics"."_lakeshift_runs" ADD COLUMN "rows_deleted" BIGINT',
        'ALTER TABLE "analytics"."_lakeshift_runs" ADD COLUMN "quality" VARCHAR(4096)']
    assert fake.log[4][1] == ("analytics", "_lakeshift_loads", "_lakeshift_runs", "_lakeshift_locks")
    parse_all(fake.statements())


class RacedRedshift(FakeRedshift):
    """Another run adds the column between our look and our ALTER."""

    def respond(self, statement: str, params: Any) -> tuple[list[tuple[Any, ...]], int]:
        if statement.startswith("ALTER TABLE") and '"note"' in statement:
            self.state_columns.append(("_lakeshift_loads", "note"))
            raise psycopg.errors.DuplicateColumn('column "note" of relation "_lakeshift_loads" already exists')
        return super().respond(statement, params)


def test_a_migration_that_loses_the_race_is_fine_and_a_real_failure_is_not():
    raced = RacedRedshift()
    raced.state_columns = [("_lakeshift_loads", "pipeline"), ("_lakeshift_runs", "notes"),
                           ("_lakeshift_loads", "deleted"), ("_lakeshift_runs", "rows_deleted"),
                           ("_lakeshift_runs", "quality")]
    open_target(rs_target(), SETTINGS, connection_factory=raced.connect).ensure_state_tables()
    assert raced.statements()[4:] == [
        STATE_COLUMNS_SELECT, 'ALTER TABLE "analytics"."_lakeshift_loads" ADD COLUMN "note" VARCHAR(1024)',
        STATE_COLUMNS_SELECT]  # looked again: the column is there
    refused = FakeRedshift()
    refused.state_columns = [("_lakeshift_loads", "pipeline"), ("_lakeshift_runs", "notes"),
                             ("_lakeshift_loads", "deleted"), ("_lakeshift_runs", "rows_deleted"),
                           ("_lakeshift_runs", "quality")]
    refused.fail_on = ("ALTER TABLE", "permission denied for relation _lakeshift_loads")
    with pytest.raises(LoadError, match="permission denied"):
        open_target(rs_target(), SETTINGS, connection_factory=refused.connect).ensure_state_tables()


def test_skip_records_the_batch_in_one_transaction_under_the_load_lock(fake, lake):
    m, _ = batch(lake, COLS[:2], [{"id": [1], "name": ["a"]}], bid=BID, low=Cursor("2026-01-01T00:00:00", 4),
                 high=Cursor("2026-01-02T00:00:00", 9))
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect, lock_timeout=0)
    loader.state.ready = True
    with loader.lock("pipe", "t"):
        rec = loader.record_skip(m, "pipe", "t", "t", "amounts missing upstream")
    L = '"analytics"."_lakeshift_locks"'
    assert fake.statements() == [
        "BEGIN", f"LOCK {L}", f'SELECT "pid", "holder" FROM {L} WHERE "pipeline" = %s AND "table_name" = %s',
        f'INSERT INTO {L} ("pipeline", "table_name", "pid", "holder", "acquired_at") '
        "VALUES (%s, %s, pg_backend_pid(), current_user, %s)",
        "COMMIT",
        "BEGIN", LOADS_SELECT, INSERT_LOAD, "COMMIT",
        f'DELETE FROM {L} WHERE "pipeline" = %s AND "table_name" = %s AND "pid" = pg_backend_pid()']
    params = next(p for s, p in fake.log if s == INSERT_LOAD)
    assert params[:10] == ("pipe", "t", BID, "t", "skipped", 0, 0, 0, '{"id": 4, "timestamp": "2026-01-01T00:00:00"}',
                           '{"id": 9, "timestamp": "2026-01-02T00:00:00"}')
    assert isinstance(params[10], datetime) and params[11] == "amounts missing upstream"
    assert (rec.mode, rec.rows, rec.note) == ("skipped", 0, "amounts missing upstream")
    parse_all(fake.statements())
    # a batch already recorded is refused inside the transaction: nothing written
    fake.log.clear()
    fake.loaded = [("pipe", "t", BID, "t", "merge", 1, 1, 10, None, None, None, None, None)]
    with pytest.raises(LoadError, match="already recorded"):
        loader.record_skip(m, "pipe", "t", "t", "again")
    assert fake.statements() == ["BEGIN", LOADS_SELECT, "ROLLBACK"]


def test_a_binlog_changes_batch_deletes_the_keys_it_touches_and_inserts_the_newest_change_unless_deleted(fake, lake):
    from lakeshift.batch import change_columns

    cols = COLS[:2] + change_columns()
    data = {"id": [1, 1, 2], "name": ["a", "a2", "b"], "_lakeshift_op": ["insert", "update", "delete"],
            "_lakeshift_seq": [7, 8, 9], "_lakeshift_commit_ts": [datetime(2026, 1, 1, tzinfo=timezone.utc)] * 3}
    m, paths = batch(lake, cols, [data], bid=BID, mode="changes")
    stmts, i = commit_into_existing(fake, lake, m, paths, [
        ("id", "bigint", None, 64, 0), ("name", "character varying", 80, None, None),
        ("_lakeshift_op", "character varying", 8, None, None), ("_lakeshift_seq", "bigint", None, 64, 0),
        ("_lakeshift_commit_ts", "timestamp with time zone", None, None, None)])
    assert stmts[i + 1] == (f'SELECT "_lakeshift_seq", "_lakeshift_commit_ts" FROM {STAGE} WHERE "_lakeshift_op" = '
                            """'truncate' ORDER BY "_lakeshift_seq" DESC LIMIT 1""")  # none here (the fake)
    newest_deletes = ('(SELECT * FROM (SELECT "id", "_lakeshift_op", "_lakeshift_seq", "_lakeshift_commit_ts", '
                      'ROW_NUMBER() OVER (PARTITION BY "id" ORDER BY "_lakeshift_seq" DESC) AS "_lakeshift_rn" FROM '
                      f'{STAGE}) AS "_lakeshift_n" WHERE "_lakeshift_rn" = 1 AND "_lakeshift_op" = \'delete\')')
    # the rows whose newest change is a delete go first: their count is the load record's `deleted`
    assert stmts[i + 2] == (f'DELETE FROM "analytics"."t" USING {newest_deletes} AS "_lakeshift_s" '
                            'WHERE "analytics"."t"."id" = "_lakeshift_s"."id"')
    assert stmts[i + 3] == (f'DELETE FROM "analytics"."t" USING {STAGE} AS "_lakeshift_s" '
                            'WHERE "analytics"."t"."id" = "_lakeshift_s"."id"')
    assert stmts[i + 4] == (
        'INSERT INTO "analytics"."t" ("id", "name", "_lakeshift_op", "_lakeshift_seq", "_lakeshift_commit_ts") '
        'SELECT "_lakeshift_s"."id", "_lakeshift_s"."name", "_lakeshift_s"."_lakeshift_op", '
        '"_lakeshift_s"."_lakeshift_seq", "_lakeshift_s"."_lakeshift_commit_ts" AT TIME ZONE \'UTC\' FROM (SELECT "id", "name", '
        '"_lakeshift_op", "_lakeshift_seq", "_lakeshift_commit_ts", ROW_NUMBER() OVER (PARTITION BY "id" ORDER BY '
        f'"_lakeshift_seq" DESC NULLS LAST) AS "_lakeshift_rn" FROM {STAGE}) AS "_lakeshift_s" '
        """WHERE "_lakeshift_s"."_lakeshift_rn" = 1 AND "_lakeshift_s"."_lakeshift_op" <> 'delete'""")
    assert fake.log[-2][0] == "COMMIT"
    assert next(p for q, p in fake.log if q == INSERT_LOAD)[12] == 5  # deleted: the first DELETE's count (the fake's 5)
    parse_all(stmts)


CHANGE_TYPES = [("id", "bigint", None, 64, 0), ("name", "character varying", 80, None, None),
                ("_lakeshift_op", "character varying", 8, None, None), ("_lakeshift_seq", "bigint", None, 64, 0),
                ("_lakeshift_commit_ts", "timestamp with time zone", None, None, None)]
TRUNCATED_AT = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


class TruncatingRedshift(FakeRedshift):
    """The fake, with a TRUNCATE at _lakeshift_seq 8 in staging (its answer to the batch's look for one)."""

    def respond(self, statement: str, params: Any) -> tuple[list[tuple[Any, ...]], int]:
        if """WHERE "_lakeshift_op" = 'truncate'""" in statement:
            return [(8, TRUNCATED_AT)], 1
        return super().respond(statement, params)


def truncate_batch(lake: Lake, soft: bool) -> tuple[Any, list[str]]:
    from lakeshift.batch import change_columns

    data = {"id": [1, None, 2, 3], "name": ["a", None, "b", "c"],
            "_lakeshift_op": ["insert", "truncate", "insert", "delete"], "_lakeshift_seq": [7, 8, 9, 10],
            "_lakeshift_commit_ts": [TRUNCATED_AT] * 4}
    m, paths = batch(lake, COLS[:2] + change_columns(), [data], bid=BID, mode="changes")
    m.soft_delete = soft
    return m, paths


def test_a_binlog_truncate_deletes_every_row_then_applies_the_changes_after_it(lake):
    """A TRUNCATE read from the binlog (hard_deletes set): DELETE of every row, never Redshift's
    TRUNCATE (it commits on its own), then only the changes after it; its rows are the `deleted`."""
    fake = TruncatingRedshift()
    m, paths = truncate_batch(lake, soft=False)
    stmts, i = commit_into_existing(fake, lake, m, paths, CHANGE_TYPES)
    after = f'(SELECT * FROM {STAGE} WHERE "_lakeshift_seq" > 8) AS "_lakeshift_a"'
    assert stmts[i + 1].endswith("""WHERE "_lakeshift_op" = 'truncate' ORDER BY "_lakeshift_seq" DESC LIMIT 1""")
    assert stmts[i + 2] == 'DELETE FROM "analytics"."t"'
    assert stmts[i + 3].startswith('INSERT INTO "analytics"."t" ("id", "name", "_lakeshift_op", ')
    assert f"FROM {after}) AS \"_lakeshift_s\" WHERE" in stmts[i + 3]
    assert stmts[i + 4] == INSERT_LOAD and stmts[-1] == "COMMIT"
    assert not any(s.upper().startswith("TRUNCATE") for s in stmts)
    assert next(p for q, p in fake.log if q == INSERT_LOAD)[12] == 5  # deleted: the DELETE's count (the fake's 5)
    parse_all(stmts)


def test_a_soft_binlog_truncate_marks_every_live_row_with_its_commit_time(lake):
    fake = TruncatingRedshift()
    m, paths = truncate_batch(lake, soft=True)
    stmts, i = commit_into_existing(fake, lake, m, paths, [
        *CHANGE_TYPES, ("_lakeshift_deleted_at", "timestamp with time zone", None, None, None)])
    assert stmts[i + 2] == ('UPDATE "analytics"."t" SET "_lakeshift_deleted_at" = %s, "_lakeshift_commit_ts" = %s, '
                            """"_lakeshift_op" = 'truncate', "_lakeshift_seq" = 8 WHERE "_lakeshift_deleted_at" IS NULL""")
    assert next(p for q, p in fake.log if q == stmts[i + 2]) == (TRUNCATED_AT, TRUNCATED_AT)
    after = f'(SELECT * FROM {STAGE} WHERE "_lakeshift_seq" > 8) AS "_lakeshift_a"'
    assert stmts[i + 3].startswith('DELETE FROM "analytics"."t" USING (SELECT * FROM (SELECT "id", ') and after in stmts[i + 3]
    assert stmts[i + 4].startswith('UPDATE "analytics"."t" SET "_lakeshift_deleted_at" = "_lakeshift_s".') and after in stmts[i + 4]
    assert stmts[i + 5].startswith('INSERT INTO "analytics"."t" (') and after in stmts[i + 5]
    assert next(p for q, p in fake.log if q == INSERT_LOAD)[12] == 10  # marked by the TRUNCATE (5) + after it (5)
    parse_all(stmts)


def test_a_soft_binlog_changes_batch_marks_the_keys_deleted_last_and_replaces_the_others(fake, lake):
    """hard_deletes: soft: the keys whose newest change is not a delete are replaced; those whose
    newest change is a delete keep their row, marked with the delete's commit time and change columns."""
    from lakeshift.batch import change_columns

    cols = COLS[:2] + change_columns()
    data = {"id": [1, 1, 2], "name": ["a", "a2", "b"], "_lakeshift_op": ["insert", "update", "delete"],
            "_lakeshift_seq": [7, 8, 9], "_lakeshift_commit_ts": [datetime(2026, 1, 1, tzinfo=timezone.utc)] * 3}
    m, paths = batch(lake, cols, [data], bid=BID, mode="changes")
    m.soft_delete = True
    stmts, i = commit_into_existing(fake, lake, m, paths, [
        ("id", "bigint", None, 64, 0), ("name", "character varying", 80, None, None),
        ("_lakeshift_op", "character varying", 8, None, None), ("_lakeshift_seq", "bigint", None, 64, 0),
        ("_lakeshift_commit_ts", "timestamp with time zone", None, None, None),
        ("_lakeshift_deleted_at", "timestamp with time zone", None, None, None)])
    newest = ('(SELECT * FROM (SELECT "id", "_lakeshift_op", "_lakeshift_seq", "_lakeshift_commit_ts", ROW_NUMBER() '
              f'OVER (PARTITION BY "id" ORDER BY "_lakeshift_seq" DESC) AS "_lakeshift_rn" FROM {STAGE}) AS '
              '"_lakeshift_n" WHERE "_lakeshift_rn" = 1 AND "_lakeshift_op" {} \'delete\')')
    assert stmts[i + 1].startswith('SELECT "_lakeshift_seq", "_lakeshift_commit_ts" FROM ')
    assert stmts[i + 2] == (f'DELETE FROM "analytics"."t" USING {newest.format("<>")} AS "_lakeshift_s" '
                            'WHERE "analytics"."t"."id" = "_lakeshift_s"."id"')
    assert stmts[i + 3] == (
        'UPDATE "analytics"."t" SET "_lakeshift_deleted_at" = "_lakeshift_s"."_lakeshift_commit_ts", '
        '"_lakeshift_commit_ts" = "_lakeshift_s"."_lakeshift_commit_ts", "_lakeshift_op" = "_lakeshift_s"."_lakeshift_op", '
        f'"_lakeshift_seq" = "_lakeshift_s"."_lakeshift_seq" FROM {newest.format("=")} AS "_lakeshift_s" '
        'WHERE "analytics"."t"."id" = "_lakeshift_s"."id" AND "analytics"."t"."_lakeshift_deleted_at" IS NULL')
    assert stmts[i + 4].startswith('INSERT INTO "analytics"."t" ("id", "name", "_lakeshift_op", ')
    assert fake.log[-2][0] == "COMMIT"
    parse_all(stmts)
