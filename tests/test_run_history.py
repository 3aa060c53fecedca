"""What `_lakeshift_runs` and `lakeshift watermark get` say about runs that
did not succeed: a run refused before it did anything (another run holds the
table's lock) is recorded as `refused` and never shown as the table's last
run; a run stopped by Ctrl-C (SIGINT, sent to a real subprocess) is recorded
as `interrupted` with that reason, not as `failed` with no error."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import mysql_connect
from kit.checks import assert_loaded_once, assert_mirrors
from kit.cli import cli_env, ok, running, sync, sync_argv
from kit.config import build_config
from kit.lake import local_storage, manifest_ids, part_files, table_lake
from kit.source import HYBRID, create_items
from kit.targets import Target, make_target
from kit.wait import wait_for

pytestmark = pytest.mark.slow  # CLI subprocesses, one killed

LOCKED = "another lakeshift run holds the lock"


def runs(target: Target) -> list[tuple[Any, ...]]:
    """(status, rows_extracted, rows_loaded, error) of every run, oldest first."""
    return target.query(f'SELECT "status", "rows_extracted", "rows_loaded", "error" FROM {target.name("_lakeshift_runs")} '
                        'ORDER BY "started_at", "finished_at"')


def shown(cli: Any, config: Path) -> dict[str, str]:
    """`watermark get` as {label: value}."""
    r = cli("watermark", "get", "-p", "p1", "-t", "items", config_dir=config)
    assert r.exit_code == 0, r.output
    return {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in r.stdout.splitlines() if ":" in line}


def extract_lock(storage: dict[str, Any]) -> str:
    scope = table_lake(storage).uri()
    return "lakeshift:" + hashlib.sha1(f"p1\0items\0{scope}".encode()).hexdigest()[:40]


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
def test_a_run_refused_by_the_lock_is_not_the_last_run(target_kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                       cli: Any, request: pytest.FixtureRequest) -> None:
    target = make_target(target_kind, request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    create_items(mysql, 30)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": HYBRID})
    with mysql_connect() as holder, holder.cursor() as cur:  # another run holds the table's extract lock
        cur.execute("SELECT GET_LOCK(%s, 0)", (extract_lock(storage),))
        assert cur.fetchone()[0] == 1
        refused = cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)
        assert refused.exit_code == 1 and LOCKED in refused.stderr
        first = shown(cli, config)
        assert first["Last run"] == "none in the newest 1 record(s), all refused"
        assert LOCKED in first["Last refusal"] and "nothing done" in first["Last refusal"]
        cur.execute("SELECT RELEASE_LOCK(%s)", (extract_lock(storage),))

    result = cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)
    assert result.exit_code == 0, result.output
    assert "Last refusal" not in shown(cli, config)

    with mysql_connect() as holder, holder.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", (extract_lock(storage),))
        for _ in range(2):
            again = cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)
            assert again.exit_code == 1 and LOCKED in again.stderr
    after = shown(cli, config)
    assert after["Last run"].startswith("ok at ") and after["Last run"].endswith("30 extracted, 30 loaded"), after
    assert LOCKED in after["Last refusal"], after
    assert [(status, extracted, loaded) for status, extracted, loaded, _ in runs(target)] == [
        ("refused", 0, 0), ("ok", 30, 30), ("refused", 0, 0), ("refused", 0, 0)]
    assert all(LOCKED in error for status, _, _, error in runs(target) if status == "refused")
    assert_mirrors(target, mysql_db)


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
def test_ctrl_c_mid_extract_is_recorded_as_interrupted(target_kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                       cli: Any, request: pytest.FixtureRequest) -> None:
    target = make_target(target_kind, request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    create_items(mysql, 10_000)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage,
                          {"items": {**HYBRID, "processing": {"batch_size": 200}}}, s3={"max_file_rows": 1000})
    # Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
    proc = subprocess.Popen(sync_argv(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(), cwd=tmp_path, start_new_session=True)
    with running(proc):
        wait_for(lambda: part_files(storage), "the run's first part", proc=proc, delay=0.005, attempts=6000)
        proc.send_signal(signal.SIGSTOP)  # mid-extract for sure while the signal is sent
        os.killpg(proc.pid, signal.SIGINT)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err  # 128 + SIGINT, as shells report a Ctrl-C
    assert err.strip().splitlines()[-1] == "Error: interrupted (SIGINT); run again to carry on", err
    assert "Traceback" not in err, err
    assert manifest_ids(storage) == []  # no batch: the parts of the interrupted extract are orphans
    [(status, extracted, loaded, error)] = runs(target)
    assert (status, loaded, error) == ("interrupted", 0, "interrupted (SIGINT, e.g. Ctrl-C)")
    assert shown(cli, config)["Last run"].startswith("interrupted at ")

    ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)
    assert [r[0] for r in runs(target)] == ["interrupted", "ok"]
