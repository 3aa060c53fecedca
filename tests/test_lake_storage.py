"""Lake storage against the moto S3 server and a local folder: the same tests
for both, plus S3 failures (unreachable, missing bucket), secrets and SSE."""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kit.lake import s3_client

from lakeshift.batch import Cursor, Manifest, new_batch_id
from lakeshift.config.models import LakeSettings, LocalStorage, S3Storage
from lakeshift.errors import LakeError
from lakeshift.lake import BatchWriter, Lake, LakeFileNotFound, TableLake
from lakeshift.lake.s3 import S3Lake


@pytest.fixture(params=["s3", "local"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    if request.param == "s3":
        storage: Any = S3Storage(**request.getfixturevalue("s3_storage"))
    else:
        storage = LocalStorage(type="local", path="lake")  # relative: resolved against base_dir
    return Lake.from_config(storage, base_dir=tmp_path)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- basic I/O


def test_root_and_uri(lake: Lake, tmp_path: Path) -> None:
    if isinstance(lake, S3Lake):
        bucket = lake.storage.bucket  # type: ignore[union-attr]
        assert lake.root == f"{bucket}/lake"
        assert lake.uri("a/b.parquet") == f"s3://{bucket}/lake/a/b.parquet"
    else:
        assert lake.root == str(tmp_path / "lake")
        assert lake.uri("a/b.parquet") == str(tmp_path / "lake" / "a" / "b.parquet")
    assert lake.full_path("a/b") == f"{lake.root}/a/b"


def test_write_read_exists_list_delete(lake: Lake) -> None:
    assert lake.list("t") == []
    assert not lake.exists("t/a.json")
    lake.write_bytes("t/a.json", b'{"a": 1}')
    lake.write_bytes("t/sub/deep/b.bin", bytes(range(256)))
    lake.write_bytes("other/c.txt", b"c")
    assert lake.exists("t/a.json")
    assert lake.read_bytes("t/sub/deep/b.bin") == bytes(range(256))
    lake.write_bytes("t/a.json", b"replaced")  # overwrite is atomic too
    assert lake.read_bytes("t/a.json") == b"replaced"

    files = lake.list("t")
    assert [(f.path, f.size) for f in files] == [("t/a.json", 8), ("t/sub/deep/b.bin", 256)]
    assert all(f.mtime.tzinfo is not None for f in files)
    assert abs((datetime.now(timezone.utc) - files[0].mtime).total_seconds()) < 3600
    assert [f.path for f in lake.list("t", recursive=False)] == ["t/a.json"]

    lake.delete(["t/a.json", "t/never-existed.json"])
    assert not lake.exists("t/a.json")
    assert [f.path for f in lake.list("")] == ["other/c.txt", "t/sub/deep/b.bin"]
    assert lake.size("t/sub/deep/b.bin") == 256


def test_local_write_leaves_no_temp_file(tmp_path: Path) -> None:
    lake = Lake.from_config(LocalStorage(type="local", path=str(tmp_path / "abs")))
    lake.write_bytes("x/state.json", b"{}")
    assert sorted(os.listdir(tmp_path / "abs" / "x")) == ["state.json"]


def test_missing_file_is_lake_file_not_found(lake: Lake) -> None:
    with pytest.raises(LakeFileNotFound, match="not found") as err:
        lake.read_bytes("nope/x.json")
    assert lake.uri("nope/x.json") in str(err.value)


def test_output_stream(lake: Lake) -> None:
    with lake.open_output_stream("p/part.bin") as out:
        out.write(b"abc")
        out.write(b"def")
    lake.sync("p/part.bin")
    assert lake.read_bytes("p/part.bin") == b"abcdef"


@pytest.mark.parametrize("bad", ["/abs", "a/../b", "a//b", "", "./a"])
def test_relative_paths_are_checked(lake: Lake, bad: str) -> None:
    with pytest.raises(LakeError, match="invalid lake path"):
        lake.write_bytes(bad, b"x")


def test_prune_dirs_removes_only_empty_local_folders(tmp_path: Path) -> None:
    lake = Lake.from_config(LocalStorage(type="local", path=str(tmp_path)))
    lake.write_bytes("t/y=1/a/x", b"1")
    lake.write_bytes("t/y=1/b/x", b"1")
    lake.delete(["t/y=1/a/x"])
    lake.prune_dirs(["t/y=1/a/x"], stop="t")
    assert not (tmp_path / "t" / "y=1" / "a").exists()
    assert (tmp_path / "t" / "y=1" / "b" / "x").exists()


# ---------------------------------------------------------------- failures and secrets

SECRET_KEY_ID = "AKIASECRETKEYID7777"
SECRET_KEY = "very-secret-access-key-value-0123456789"


def test_unreachable_s3_is_a_clear_lake_error_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    storage = S3Storage(type="s3", bucket="some-bucket", prefix="p", region="us-east-1", endpoint_url=endpoint,
                        access_key_id=SECRET_KEY_ID, secret_access_key=SECRET_KEY, session_token="sEcReTtOkEn-42")
    caplog.set_level(logging.DEBUG)
    lake = Lake.from_config(storage)
    assert SECRET_KEY not in repr(lake) and SECRET_KEY_ID not in repr(lake)
    for op in (lambda: lake.write_bytes("t/x.json", b"{}"), lambda: lake.read_bytes("t/x.json"),
               lambda: lake.list("t"), lambda: lake.exists("t/x.json")):
        with pytest.raises(LakeError) as err:
            op()
        msg = str(err.value)
        assert "\n" not in msg
        assert "cannot reach the S3 endpoint" in msg and endpoint in msg
        assert "s3://some-bucket/p/t" in msg
        for secret in (SECRET_KEY, SECRET_KEY_ID, "sEcReTtOkEn-42"):
            assert secret not in msg
    for secret in (SECRET_KEY, SECRET_KEY_ID, "sEcReTtOkEn-42"):
        assert secret not in caplog.text


def test_missing_bucket_is_a_clear_lake_error(s3_storage: dict[str, Any]) -> None:
    lake = Lake.from_config(S3Storage(**{**s3_storage, "bucket": "ls-no-such-bucket"}))
    with pytest.raises(LakeError, match=r"cannot write s3://ls-no-such-bucket/lake/t/x\.json: bucket 'ls-no-such-bucket' does not exist"):
        lake.write_bytes("t/x.json", b"{}")
    with pytest.raises(LakeError, match="does not exist"):
        lake.list("t")


def test_s3_without_sse_sends_no_sse_header(s3_storage: dict[str, Any], s3_endpoint: str) -> None:
    lake = Lake.from_config(S3Storage(**s3_storage))
    lake.write_bytes("t/plain.json", b"{}")
    head = s3_client(s3_endpoint).head_object(Bucket=s3_storage["bucket"], Key="lake/t/plain.json")
    assert "ServerSideEncryption" not in head


# ---------------------------------------------------------------- server-side encryption


@pytest.mark.parametrize("sse, kms_key", [("AES256", None), ("aws:kms", "arn:aws:kms:us-east-1:123456789012:key/k-1")])
def test_sse_header_on_every_object(s3_storage: dict[str, Any], s3_endpoint: str, sse: str, kms_key: str | None) -> None:
    storage = S3Storage(**s3_storage, server_side_encryption=sse, kms_key_id=kms_key)
    lake = Lake.from_config(storage)
    tl = TableLake(lake, "pipe", "orders")
    schema = pa.schema([("id", pa.int64())])
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    batch_id = new_batch_id(started)
    writer = BatchWriter(tl, batch_id, started, schema,
                         LakeSettings(max_file_rows=40, row_group_rows=16, compression="none"))
    writer.write(pa.table({"id": list(range(100))}, schema=schema))
    files, rows, _, _ = writer.close()
    assert rows == 100 and len(files) == 3
    tl.write_manifest(Manifest(batch_id, "pipe", "orders", "db.orders", "id_only", "merge", [], ["id"],
                               watermark_high=Cursor(id=99), files=files, rows=rows))
    tl.write_watermark(Cursor(id=99), batch_id)

    # A multipart upload (> one 5 MiB part) must carry the header as well.
    lake.sse_writer().part_size = 5 * 1024 * 1024
    big = os.urandom(11 * 1024 * 1024)
    with lake.open_output_stream("big/blob.bin") as out:
        out.write(big)

    client = s3_client(s3_endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=storage.bucket)["Contents"]]
    assert len(keys) == 6  # 3 parts, manifest, state, big blob
    for key in keys:
        head = client.head_object(Bucket=storage.bucket, Key=key)
        assert head["ServerSideEncryption"] == sse, key
        if kms_key:
            assert head["SSEKMSKeyId"] == kms_key, key
    # Reads go through pyarrow as usual.
    assert lake.read_bytes("big/blob.bin") == big
    assert pq.read_table(lake.full_path(tl.rel(files[0].path)), filesystem=lake.filesystem).num_rows == 40
    assert tl.effective_watermark()[0] == Cursor(id=99)


def test_sse_aborted_multipart_leaves_nothing(s3_storage: dict[str, Any], s3_endpoint: str) -> None:
    lake = Lake.from_config(S3Storage(**s3_storage, server_side_encryption="AES256"))
    lake.sse_writer().part_size = 5 * 1024 * 1024
    from lakeshift.lake.sse import SseWriter

    upload = SseWriter.open(lake.sse_writer(), lake.full_path("x/partial.bin"))
    upload.write(os.urandom(6 * 1024 * 1024))
    assert upload.upload_id is not None
    upload.abort()
    client = s3_client(s3_endpoint)
    assert "Contents" not in client.list_objects_v2(Bucket=s3_storage["bucket"])
    assert not client.list_multipart_uploads(Bucket=s3_storage["bucket"]).get("Uploads")


def test_errors_that_echo_a_secret_are_redacted() -> None:
    storage = S3Storage(type="s3", bucket="b-1", endpoint_url="http://127.0.0.1:1",
                        access_key_id=SECRET_KEY_ID, secret_access_key=SECRET_KEY)
    lake = Lake.from_config(storage)
    err = lake.error("write", "t/x", OSError(f"signing with {SECRET_KEY} for {SECRET_KEY_ID} failed"))
    assert SECRET_KEY not in str(err) and SECRET_KEY_ID not in str(err)
    assert str(err).startswith("cannot write s3://b-1/t/x: ")


def test_s3_without_prefix_uses_the_bucket_root(s3_storage: dict[str, Any], s3_endpoint: str) -> None:
    lake = Lake.from_config(S3Storage(**{**s3_storage, "prefix": "/"}))
    assert lake.uri("t/x.json") == f"s3://{s3_storage['bucket']}/t/x.json"
    lake.write_bytes("t/x.json", b"1")
    assert [f.path for f in lake.list("")] == ["t/x.json"]
    assert s3_client(s3_endpoint).get_object(Bucket=s3_storage["bucket"], Key="t/x.json")["Body"].read() == b"1"


def test_sse_failures_are_clear_lake_errors(s3_storage: dict[str, Any]) -> None:
    missing = Lake.from_config(S3Storage(**{**s3_storage, "bucket": "ls-no-such-bucket"},
                                         server_side_encryption="AES256"))
    with pytest.raises(LakeError, match="bucket 'ls-no-such-bucket' does not exist"):
        missing.write_bytes("t/x.json", b"{}")
    endpoint = f"http://127.0.0.1:{closed_port()}"
    down = Lake.from_config(S3Storage(**{**s3_storage, "endpoint_url": endpoint, "secret_access_key": SECRET_KEY},
                                      server_side_encryption="aws:kms"))
    with pytest.raises(LakeError) as err:
        with down.open_output_stream("t/part.parquet") as out:
            out.write(b"x")
    assert "cannot reach the S3 endpoint" in str(err.value) and SECRET_KEY not in str(err.value)


@pytest.mark.parametrize("sse", [None, pytest.param("AES256", marks=pytest.mark.slow)])  # ~20 s; the same error without SSE stays quick
def test_batch_writer_on_a_missing_bucket_raises_lake_error(s3_storage: dict[str, Any], sse: str | None) -> None:
    lake = Lake.from_config(S3Storage(**{**s3_storage, "bucket": "ls-no-such-bucket"}, server_side_encryption=sse))
    schema = pa.schema([("id", pa.int64())])
    writer = BatchWriter(TableLake(lake, "p", "t"), new_batch_id(), datetime.now(timezone.utc), schema, LakeSettings())
    with pytest.raises(LakeError, match=r"cannot write s3://ls-no-such-bucket/lake/p/t/year=.*part-00000\.parquet: bucket 'ls-no-such-bucket' does not exist"):
        writer.write(pa.table({"id": [1, 2, 3]}, schema=schema))
        writer.close()
    writer.abort()  # best effort, must not raise


def test_s3_without_configured_keys_uses_the_default_chain(s3_storage: dict[str, Any]) -> None:
    # conftest puts test keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; no instance metadata is tried.
    storage = {k: v for k, v in s3_storage.items() if k not in ("access_key_id", "secret_access_key")}
    lake = Lake.from_config(S3Storage(**storage))
    lake.write_bytes("t/x.json", b"{}")
    assert lake.exists("t/x.json")
