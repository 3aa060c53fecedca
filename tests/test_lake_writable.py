"""A lake the run cannot write is found before MySQL is read: the run writes
and deletes a probe file in the table's lake folder first, and fails in one
line naming the folder and the way out. Tests run as root, for whom file
permissions do not apply, so the local lake is made unwritable by a regular
file where a folder must be; the S3 lake by a bucket that does not exist.

Each case also runs with the source table missing: the error is still the
lake's, which shows the lake is checked before the source is touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import mysql_exec
from kit.checks import assert_mirrors
from kit.cli import ok, sync
from kit.config import build_config
from kit.lake import local_storage, s3_client, tree
from kit.source import FULL_SYNC, HYBRID, create_items
from kit.targets import make_target

pytestmark = pytest.mark.slow  # CLI subprocesses against unwritable lakes


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def unwritable_lake(kind: str, tmp_path: Path, s3_storage: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(storage, the folder named in the error, the way out it gives)."""
    if kind == "local-under-a-file":
        (tmp_path / "data").write_text("a regular file\n")
        return (local_storage(tmp_path / "data" / "lake"), f"{tmp_path}/data/lake/p1/items",
                f"{tmp_path}/data is a file, not a folder: point the storage's path elsewhere")
    if kind == "table-folder-is-a-file":
        (tmp_path / "lake" / "p1").mkdir(parents=True)
        (tmp_path / "lake" / "p1" / "items").write_text("not a folder\n")
        return (local_storage(tmp_path / "lake"), f"{tmp_path}/lake/p1/items",
                f"{tmp_path}/lake/p1/items is a file, not a folder: point the storage's path elsewhere")
    storage = {**s3_storage, "bucket": s3_storage["bucket"] + "-missing"}
    return (storage, f"s3://{storage['bucket']}/lake/p1/items",
            "check the bucket, the prefix and that these credentials may put and delete objects there")


@pytest.mark.parametrize(
    ("strategy", "kind", "args", "source"),
    [
        ("full_sync", "local-under-a-file", (), "table"),
        ("hybrid", "table-folder-is-a-file", (), "table"),
        ("hybrid", "s3-missing-bucket", (), "table"),
        ("hybrid", "local-under-a-file", ("--backup-only",), "table"),
        ("full_sync", "local-under-a-file", ("--backup-only",), "table"),
        ("full_sync", "local-under-a-file", ("--backup-only",), "no-table"),
        ("full_sync", "s3-missing-bucket", ("--backup-only",), "no-table"),
        ("hybrid", "table-folder-is-a-file", (), "no-table"),
    ],
    ids=lambda v: ("-".join(v) or "sync") if isinstance(v, tuple) else v,
)
def test_unwritable_lake_fails_first_in_one_line(strategy: str, kind: str, args: tuple[str, ...], source: str,
                                                 mysql: Any, mysql_db: str, tmp_path: Path, s3_storage: dict[str, Any],
                                                 cli: Any, request: pytest.FixtureRequest) -> None:
    if source == "table":
        create_items(mysql, 50)
    target = make_target("duckdb", request, tmp_path)
    storage, folder, way_out = unwritable_lake(kind, tmp_path, s3_storage)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage,
                          {"items": FULL_SYNC if strategy == "full_sync" else HYBRID})
    before = tree(tmp_path / "lake")
    result = cli("sync", "pipeline", "-p", "p1", "-t", "items", *args, config_dir=config)
    assert result.exit_code == 1, result.output
    line = error_line(result.stderr)
    assert line.startswith(f"Error: 1 table(s) failed (items); items: the lake folder {folder} is not writable ("), line
    assert line.endswith(f"); nothing was read from the source; {way_out}"), line
    assert tree(tmp_path / "lake") == before
    assert not target.exists("items")


@pytest.mark.parametrize("lake", ["local", "s3"])
def test_the_probe_leaves_nothing_behind(lake: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                         s3_storage: dict[str, Any], s3_endpoint: str,
                                         request: pytest.FixtureRequest) -> None:
    create_items(mysql, 50)
    target = make_target("postgres", request, tmp_path)
    storage = local_storage(tmp_path / "lake") if lake == "local" else s3_storage
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": HYBRID})
    ok(sync(config))
    mysql_exec(mysql, "UPDATE items SET name = 'changed', updated_at = '2030-01-01' WHERE id = 7")
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    if lake == "local":
        names = list(tree(tmp_path / "lake"))
    else:
        listed = s3_client(s3_endpoint).list_objects_v2(Bucket=s3_storage["bucket"])
        names = [o["Key"] for o in listed.get("Contents", [])]
    assert names and not [n for n in names if "probe" in n], names
