"""Issue 6, cases 1-4: the run is SIGKILLed (a real subprocess, through
LAKESHIFT_FAULT) after the Parquet parts are uploaded but before the manifest,
after the manifest but before the load, inside the load transaction, and
after the load commit. What the crash leaves behind is checked, then the
source changes again (the same rows once more, so batches applied out of
order would show), and the next run must end with target == source row by
row, no key twice, and every batch in the lake loaded exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kit.checks import assert_loaded_once, assert_mirrors
from kit.cli import killed, ok, summary, sync
from kit.config import build_config
from kit.lake import local_storage, manifest_ids, part_files
from kit.source import FULL_SYNC, HYBRID, change_items, create_items
from kit.targets import Target, make_target

pytestmark = pytest.mark.slow  # every test kills CLI subprocesses at fault points

FAULTS = ["after_parts", "after_manifest", "in_load_transaction", "after_load_commit"]
TABLE = {**HYBRID, "processing": {"batch_size": 40}}


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "local":
        return local_storage(tmp_path / "lake")
    return request.getfixturevalue("s3_storage")


def setup(mysql: Any, mysql_db: str, target: Target, storage: dict[str, Any], tmp_path: Path,
          table: dict[str, Any] = TABLE, rows: int = 300) -> Path:
    create_items(mysql, rows)
    # small parts: every batch has several files, so "some parts but no manifest" is real
    return build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": table},
                        s3={"max_file_rows": 100})


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
@pytest.mark.parametrize("fault", FAULTS)
def test_killed_at_a_fault_point_the_next_run_converges(fault: str, target_kind: str, storage: dict[str, Any],
                                                       mysql: Any, mysql_db: str, tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    target = make_target(target_kind, request, tmp_path)
    config = setup(mysql, mysql_db, target, storage, tmp_path)
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    before_rows, before_loads = target.rows(), target.loads()
    before_manifests = manifest_ids(storage)
    assert len(before_manifests) == 1 and len(part_files(storage)) == 3

    change_items(mysql, 1, inserts=150)  # 154 changed rows: two parts of 100 and 54
    killed(sync(config, fault=fault))

    manifests = manifest_ids(storage)
    if fault == "after_parts":
        # parts of the dead batch are in the lake, but without a manifest the batch does not exist
        assert manifests == before_manifests
        assert len(part_files(storage)) == 3 + 2
    else:
        assert len(manifests) == 2
    if fault == "after_load_commit":
        assert_mirrors(target, mysql_db)  # committed before the kill
        assert len(target.loads()) == 2
    else:
        assert target.rows() == before_rows  # nothing of the dead run is visible
        assert target.loads() == before_loads

    change_items(mysql, 2, inserts=30)  # the same rows change again
    result = ok(sync(config))
    assert summary(result.stdout)[0] == "ok"
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)
    assert target.staging_tables() == []

    # nothing left to do: no batch, nothing loaded twice
    again = ok(sync(config))
    assert summary(again.stdout)[1:] == (0, 0)
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
@pytest.mark.parametrize("fault", ["after_parts", "in_load_transaction"])
def test_killed_in_the_very_first_run(fault: str, target_kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    """No target table yet: the dead run must not leave an empty or partial one
    that a later run would take as loaded."""
    target = make_target(target_kind, request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    config = setup(mysql, mysql_db, target, storage, tmp_path)
    killed(sync(config, fault=fault))
    assert not target.exists("items")
    assert target.loads() == []
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
def test_killed_at_every_point_in_a_row(target_kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    """Four runs in a row, each killed at another point with new changes in
    between (batches pile up in the lake); one clean run then loads them all in
    order."""
    target = make_target(target_kind, request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    config = setup(mysql, mysql_db, target, storage, tmp_path)
    for n, fault in enumerate(["after_manifest", "after_parts", "in_load_transaction", "after_manifest"], 1):
        killed(sync(config, fault=fault))
        change_items(mysql, n, inserts=25)
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)
    assert target.staging_tables() == []


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
@pytest.mark.parametrize("fault", FAULTS)
def test_full_sync_killed_at_a_fault_point(fault: str, target_kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                           request: pytest.FixtureRequest) -> None:
    """The same points for a full_sync (replace) batch, with hard deletes in the
    new snapshot: after the kill the target is the old snapshot or (killed after
    the commit) the new one; the next run converges to the source."""
    target = make_target(target_kind, request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    config = setup(mysql, mysql_db, target, storage, tmp_path, table={**FULL_SYNC, "processing": {"batch_size": 40}})
    ok(sync(config))
    old = target.rows()
    change_items(mysql, 1, inserts=150)
    mysql.cursor().execute("DELETE FROM items WHERE id % 9 = 0")
    killed(sync(config, fault=fault))
    if fault == "after_load_commit":
        assert_mirrors(target, mysql_db)
    else:
        assert target.rows() == old
    change_items(mysql, 2, inserts=30)
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage, snapshots=True)
    assert target.staging_tables() == []
