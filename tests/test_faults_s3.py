"""Issue 6, case 5: the S3 server goes away in the middle of an upload.

The lake is a moto S3 server the test owns, reached through a TCP proxy the
test can cut. Why a proxy rather than stopping the moto server: moto's
werkzeug server keeps serving kept-alive HTTP connections after stop(), so
the run would simply go on uploading; and a real outage does not lose the
bucket, while a moto server restarted in another process starts empty. The
proxy closes its port and resets every open connection (what a client sees
when S3 is unreachable), and "comes back" by listening on the same port again
with the bucket and its objects as they were.

The run is frozen (SIGSTOP) once some of its parts are in the bucket and its
manifest is not, the S3 server is cut, and the run goes on: it must fail with
one clear line, nothing of its batch may be loaded (then or ever), and once
the server is back the next run converges."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_AWS_KEY, TEST_AWS_SECRET, unique
from kit.checks import assert_loaded_once, assert_mirrors
from kit.cli import assert_one_line_error, ok, running, start_sync, sync
from kit.config import build_config
from kit.lake import manifest_ids, part_files, s3_client, table_lake
from kit.net import TcpProxy
from kit.source import HYBRID, change_items, create_items, insert_items
from kit.targets import duck_target, make_target
from kit.wait import wait_for

pytestmark = pytest.mark.slow  # S3 outages under CLI subprocesses


@pytest.fixture
def s3_outage() -> Iterator[tuple[TcpProxy, str, Any]]:
    """(proxy, bucket, boto3 client straight to the server) on a moto server of this test's own."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = s3_client(f"http://{host}:{port}")
        bucket = unique("ls-outage").replace("_", "-")
        client.create_bucket(Bucket=bucket)
        proxy = TcpProxy(port)
        try:
            yield proxy, bucket, client
        finally:
            proxy.cut()
    finally:
        server.stop()


def storage_via(proxy: TcpProxy, bucket: str) -> dict[str, Any]:
    return {"type": "s3", "bucket": bucket, "prefix": "lake", "region": "us-east-1",
            "endpoint_url": f"http://127.0.0.1:{proxy.port}", "access_key_id": TEST_AWS_KEY,
            "secret_access_key": TEST_AWS_SECRET}


def keys(client: Any, bucket: str) -> list[str]:
    out: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
def test_s3_outage_mid_upload(target_kind: str, s3_outage: tuple[TcpProxy, str, Any], mysql: Any, mysql_db: str,
                              tmp_path: Path, request: pytest.FixtureRequest) -> None:
    proxy, bucket, client = s3_outage
    storage = storage_via(proxy, bucket)
    target = make_target(target_kind, request, tmp_path)
    create_items(mysql, 1_000)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage,
                          {"items": {**HYBRID, "processing": {"batch_size": 500}}}, s3={"max_file_rows": 400})
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    before_rows, before_loads, before_manifests = target.rows(), target.loads(), manifest_ids(storage)
    parts_before = len([k for k in keys(client, bucket) if k.endswith(".parquet")])

    insert_items(mysql, 40_000, name="big change")  # 100 parts of 400 rows
    with running(start_sync(config)) as proc:
        wait_for(lambda: len([k for k in keys(client, bucket) if k.endswith(".parquet")]) >= parts_before + 2,
                 "some parts of the new batch in the bucket", proc=proc, delay=0.02)
        proc.send_signal(signal.SIGSTOP)
        assert manifest_ids(storage) == before_manifests, "the batch was complete before the outage"
        proxy.cut()
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=240)
    result = type("R", (), {"returncode": proc.returncode, "stdout": out, "stderr": err})()
    line = assert_one_line_error(result, "items", f"s3://{bucket}/lake/")
    assert TEST_AWS_SECRET not in out + err

    # nothing half-written is loaded: no new manifest, the target as it was
    proxy.restore()
    assert manifest_ids(storage) == before_manifests
    assert target.rows() == before_rows and target.loads() == before_loads
    assert target.staging_tables() == []
    leftover = len([k for k in keys(client, bucket) if k.endswith(".parquet")]) - parts_before
    assert leftover >= 2  # orphans of the dead batch (s3clean's job), never named by a manifest

    # the server is back: the next run converges, the orphans are never loaded
    change_items(mysql, 1)
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)
    named = {f.path for m in table_lake(storage).manifests() for f in m.files}
    assert len(part_files(storage)) == len(named) + leftover, line


def test_s3_down_before_the_run(s3_outage: tuple[TcpProxy, str, Any], mysql: Any, mysql_db: str, tmp_path: Path,
                                request: pytest.FixtureRequest) -> None:
    """Unreachable from the start: one line naming the lake, nothing touched in the target."""
    proxy, bucket, _ = s3_outage
    storage = storage_via(proxy, bucket)
    target = make_target("postgres", request, tmp_path)
    create_items(mysql, 100)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": HYBRID})
    proxy.cut()
    result = sync(config, timeout=180)
    assert_one_line_error(result, "items", f"s3://{bucket}")
    assert not target.exists("items")
    proxy.restore()
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)


def test_killed_mid_upload_then_s3clean_aborts_the_unfinished_upload(mysql: Any, mysql_db: str, tmp_path: Path,
                                                                     s3_endpoint: str, s3_storage: dict[str, Any],
                                                                     s3_bucket: str) -> None:
    """A part bigger than one upload part goes up as an S3 multipart upload; a
    run killed in the middle of it leaves an upload no listing shows but S3
    keeps. `s3clean list` shows it, `s3clean clean` aborts it; the next run
    converges as after any crash."""
    client = s3_client(s3_endpoint)
    create_items(mysql, 0)
    mysql.cursor().execute("INSERT INTO items (name, amount, updated_at) SELECT CONCAT('bulk row ', seq, ' ', "
                           "MD5(seq)), seq / 100, TIMESTAMPADD(SECOND, seq, '2026-03-01') FROM seq_1_to_600000")
    target = duck_target(tmp_path / "target.duckdb")
    config = build_config(tmp_path / "config", mysql_db, target.config, s3_storage,
                          {"items": {**HYBRID, "processing": {"batch_size": 50_000}}})
    uploads = lambda: client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])  # noqa: E731
    with running(start_sync(config)) as proc:
        wait_for(uploads, "a multipart upload in progress", proc=proc, delay=0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    assert uploads() and not target.exists("items")

    def s3clean(*args: str) -> Any:
        return subprocess.run([sys.executable, "-m", "lakeshift", "--config-dir", str(config), "s3clean", *args,
                               "-p", "p1", "-t", "items"], capture_output=True, text=True, timeout=120)

    listing = s3clean("list")
    assert listing.returncode == 0, listing.stderr
    assert "1 unfinished multipart upload" in listing.stdout, listing.stdout
    dry = s3clean("clean", "--dry-run")
    assert dry.returncode == 0 and "would abort 1 unfinished multipart upload" in dry.stdout, dry.stdout
    assert uploads()
    # (moto reports every upload as initiated in 2010: the grace period for young
    # uploads is tested below with a chosen `now`)
    cleaned = s3clean("clean")
    assert cleaned.returncode == 0 and "aborted 1 unfinished multipart upload" in cleaned.stdout, cleaned.stdout
    assert uploads() == []

    ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, s3_storage)


def test_s3clean_keeps_young_unfinished_uploads(s3_endpoint: str, s3_storage: dict[str, Any], s3_bucket: str) -> None:
    """An unfinished upload younger than the orphan grace period may belong to
    an extract still running: kept (unless --force); an old one is aborted."""
    from datetime import timedelta

    from lakeshift.lake import clean

    client = s3_client(s3_endpoint)
    tl = table_lake(s3_storage)
    key = f"lake/{tl.base}/year=2026/month=03/day=01/hour=12/batch=x/part-00000.parquet"
    client.create_multipart_upload(Bucket=s3_bucket, Key=key)
    client.create_multipart_upload(Bucket=s3_bucket, Key="lake/p2/items/elsewhere.parquet")  # another table's
    [upload] = tl.incomplete_uploads()
    assert upload.path == key.split(f"{tl.base}/", 1)[1]
    young = clean(tl, set(), None, dry_run=False, force=False, now=upload.initiated + timedelta(minutes=10))
    assert young.kept_uploads == [upload] and young.aborted_uploads == [] and tl.incomplete_uploads() == [upload]
    old = clean(tl, set(), None, dry_run=False, force=False, now=upload.initiated + timedelta(hours=2))
    assert old.aborted_uploads == [upload] and tl.incomplete_uploads() == []
    others = client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert [u["Key"] for u in others] == ["lake/p2/items/elsewhere.parquet"]  # not this table's: untouched
