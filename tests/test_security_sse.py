"""Case 25: with `server_side_encryption` on the lake storage, every object a
whole sync writes to S3 carries the SSE headers (asserted with HEAD against the
S3 API server): Parquet parts (a 20 MB part goes up as a multipart upload),
manifests, the watermark state and the Redshift COPY manifest. The rows
arrive in the target exactly. (tests/test_lake_storage.py tests the lake
layer alone.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from kit.config import build_config
from kit.lake import s3_client
from kit.redshift import FakeRedshift, patch_redshift, redshift_config
from kit.source import source_rows
from kit.targets import pg_config, pg_target

from conftest import mysql_exec

KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
COLS = ["id", "name", "blob"]


@pytest.mark.parametrize("sse, kms", [pytest.param("AES256", None, id="sse-s3"),
                                      pytest.param("aws:kms", KMS_KEY, id="sse-kms", marks=pytest.mark.slow)])
def test_every_object_of_a_sync_is_encrypted_at_rest(sse: str, kms: str | None, mysql: Any, mysql_db: str,
                                                     tmp_path: Path, cli: Any, pg_schema: str, s3_endpoint: str,
                                                     s3_storage: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    mysql_exec(mysql, "CREATE TABLE docs (id INT PRIMARY KEY, name VARCHAR(20), `blob` MEDIUMBLOB)")
    with mysql.cursor() as cur:  # ~20 MB of incompressible bytes: one Parquet part, uploaded in 8 MB pieces
        cur.executemany("INSERT INTO docs VALUES (%s, %s, %s)",
                        [(i, f"doc {i}", os.urandom(100_000)) for i in range(200)])
    storage = {**s3_storage, "server_side_encryption": sse, **({"kms_key_id": kms} if kms else {})}
    table = {"docs": {"cdc_strategy": "full_sync"}}
    config = build_config(tmp_path / "config", mysql_db, pg_config(pg_schema), storage, table,
                          s3={"compression": "none"})
    result = cli("sync", "pipeline", "-p", "p1", "-t", "docs", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    assert pg_target(pg_schema).rows("docs", COLS, "id") == source_rows(mysql_db, "docs", COLS, "id")

    # the same lake into Redshift (fake connection): its COPY manifest is an object of the lake too
    emulator = FakeRedshift(s3_client(s3_endpoint))
    patch_redshift(monkeypatch, emulator)
    config = build_config(tmp_path / "config_rs", mysql_db, redshift_config(iam_role="arn:aws:iam::1:role/r"),
                          storage, table, pipeline="p2", s3={"compression": "none"})
    result = cli("sync", "pipeline", "-p", "p2", "-t", "docs", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    assert emulator.staged_rows == 200

    s3 = s3_client(s3_endpoint)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3_storage["bucket"])
            for o in page.get("Contents", [])]
    kinds = {"parquet": 0, "manifest": 0, "state": 0, "copy": 0}
    for key in keys:
        head = s3.head_object(Bucket=s3_storage["bucket"], Key=key)
        assert head.get("ServerSideEncryption") == sse, key
        if kms:
            assert head.get("SSEKMSKeyId") == kms, key
        if key.endswith(".parquet"):
            kinds["parquet"] += 1
            assert head["ContentLength"] > 16 * 1024 * 1024, key  # really went up in several parts
            assert "-" in head["ETag"], (key, head["ETag"])  # a multipart upload's ETag
        kinds["manifest"] += "/_manifests/" in key
        kinds["state"] += key.endswith("/_state/watermark.json")
        kinds["copy"] += key.endswith(".copy-manifest")
    assert kinds == {"parquet": 2, "manifest": 2, "state": 2, "copy": 1}, keys
