"""Case 24: Redshift COPY credentials, through whole in-process syncs into an
S3 lake (the moto server) with a recording fake Redshift connection
(tests/kit/redshift.py FakeRedshift; tests/test_load_redshift.py has the
loader-level tests):

- an `iam_role` on the target -> COPY ... IAM_ROLE, and the lake's static keys
  appear in no statement even though the storage has them;
- no role -> the storage's static keys (and session token) in the COPY only,
  never in the output (also --debug), the run history, the lake or a failing
  COPY's error (Redshift echoes the statement in some errors);
- neither (and no keys in the AWS credential chain) -> one clear line, nothing sent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from kit.config import build_config
from kit.lake import s3_client
from kit.redshift import FakeRedshift, patch_redshift, redshift_config

from conftest import mysql_exec

ROLE = "arn:aws:iam::123456789012:role/lakeshift-copy"
KEY_ID = "AKIAREDSHIFTCOPY0001"
SECRET = "rs/copy+Secret=Key0123456789abcdef"
TOKEN = "IQoJb3JpZ2luX2VjEToken0123456789=="
TABLE = {"items": {"cdc_strategy": "full_sync"}}


@pytest.fixture
def items(mysql: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(10))",
               "INSERT INTO items VALUES (1, 'a'), (2, 'b')")


@pytest.fixture
def emulator(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> FakeRedshift:
    emu = FakeRedshift(s3_client(s3_endpoint))
    patch_redshift(monkeypatch, emu)
    return emu


def storage_with_keys(s3_storage: dict[str, Any], token: bool = True) -> dict[str, Any]:
    return {**s3_storage, "access_key_id": KEY_ID, "secret_access_key": SECRET,
            **({"session_token": TOKEN} if token else {})}


def everything_written(emulator: FakeRedshift, s3_endpoint: str, bucket: str) -> str:
    s3 = s3_client(s3_endpoint)
    objects = [s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode("utf-8", "replace")
               for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return "\n".join(objects)


def run(cli: Any, config: Path, *flags: str) -> Any:
    return cli(*flags, "sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)


def copies(emulator: FakeRedshift) -> list[str]:
    return [s for s in emulator.statements() if s.startswith("COPY ")]


def test_an_iam_role_is_used_and_the_lake_keys_are_not(items: None, mysql_db: str, tmp_path: Path, cli: Any,
                                                       emulator: FakeRedshift, s3_storage: dict[str, Any],
                                                       s3_endpoint: str) -> None:
    config = build_config(tmp_path / "config", mysql_db, redshift_config(iam_role=ROLE), storage_with_keys(s3_storage),
                          TABLE)
    result = run(cli, config)
    assert result.exit_code == 0, result.output + result.stderr
    [copy] = copies(emulator)
    assert re.fullmatch(rf"COPY \"_ls_stage_[0-9a-f]{{24}}\" FROM 's3://[^']+\.copy-manifest' IAM_ROLE '{ROLE}' "
                        "FORMAT AS PARQUET MANIFEST", copy), copy
    sent = repr(emulator.log)
    for secret in (KEY_ID, SECRET, TOKEN):
        assert secret not in sent and secret not in result.output + result.stderr
    assert "aws_access_key_id" not in sent and "CREDENTIALS" not in sent


@pytest.mark.parametrize("debug", [False, True])
def test_static_keys_only_in_the_copy_and_never_shown(debug: bool, items: None, mysql_db: str, tmp_path: Path,
                                                      cli: Any, emulator: FakeRedshift, s3_storage: dict[str, Any],
                                                      s3_endpoint: str) -> None:
    config = build_config(tmp_path / "config", mysql_db, redshift_config(), storage_with_keys(s3_storage), TABLE)
    result = run(cli, config, *(["--debug"] if debug else []))
    assert result.exit_code == 0, result.output + result.stderr
    [copy] = copies(emulator)
    assert copy.endswith(f"CREDENTIALS 'aws_access_key_id={KEY_ID};aws_secret_access_key={SECRET};token={TOKEN}' "
                         "FORMAT AS PARQUET MANIFEST"), copy
    others = repr([entry for entry in emulator.log if not entry[0].startswith("COPY ")])
    written = everything_written(emulator, s3_endpoint, s3_storage["bucket"])
    for secret in (KEY_ID, SECRET, TOKEN):
        assert secret not in result.output + result.stderr
        assert secret not in others  # e.g. the run history INSERT
        assert secret not in written  # the COPY manifest and the batch's files
    assert "aws_access_key_id" not in result.output + result.stderr


def test_a_failing_copy_that_echoes_its_statement_shows_no_key(items: None, mysql_db: str, tmp_path: Path, cli: Any,
                                                              emulator: FakeRedshift,
                                                              s3_storage: dict[str, Any]) -> None:
    emulator.fail_on = ("COPY ", "S3ServiceException:Access Denied,Status 403,Error AccessDenied\n"
                        "DETAIL: error: S3ServiceException  query: 1234  location: s3_utility.cpp:100\n"
                        "statement: {statement}")
    config = build_config(tmp_path / "config", mysql_db, redshift_config(), storage_with_keys(s3_storage), TABLE)
    result = run(cli, config, "--debug")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Access Denied" in errors[0], result.stderr
    assert "Traceback (most recent call last)" in result.stderr  # --debug
    history = [params for stmt, params in emulator.log if '"_lakeshift_runs"' in stmt and stmt.startswith("INSERT")]
    assert history and history[-1][4] == "failed" and "Access Denied" in history[-1][8]  # the error column
    for secret in (KEY_ID, SECRET, TOKEN):
        assert secret not in result.output + result.stderr, secret
        assert secret not in repr(history), secret


def test_neither_a_role_nor_keys_is_one_clear_line(items: None, mysql_db: str, tmp_path: Path, cli: Any,
                                                   emulator: FakeRedshift, s3_storage: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # the lake is written with the rig's environment keys; the COPY's chain lookup finds none
    monkeypatch.setattr("lakeshift.load.redshift.chain_keys", lambda: None)
    storage = {k: v for k, v in s3_storage.items() if k not in ("access_key_id", "secret_access_key")}
    config = build_config(tmp_path / "config", mysql_db, redshift_config(), storage, TABLE)
    result = run(cli, config)
    assert result.exit_code == 1
    err = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(err) == 1 and "COPY needs `iam_role` on the Redshift target (preferred) or " \
                             "access_key_id/secret_access_key on the lake storage" in err[0], result.stderr
    assert not copies(emulator)
