"""The binlog benchmarks must not rot either: bench/binlog_apply.py and
bench/binlog_follow.py run end to end at a tiny size against their own
throwaway MariaDB. Timings are never asserted (docs/benchmarks.md has them); the
follow bench itself fails unless SIGTERM ends the follower cleanly and the
target then equals the source."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)


def test_binlog_apply_bench_reports_both_ratios() -> None:
    run = _run(str(ROOT / "bench" / "binlog_apply.py"), "--rows", "3000")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "30 changes on 3,000 rows" in run.stdout
    assert re.search(r"raw mysql-replication read: [\d.]+s, CPU [\d.]+s \(30 rows\)", run.stdout), run.stdout
    assert re.search(r"binlog / hybrid = [\d.]+ \(target <= 0\.5\); binlog / raw read = [\d.]+", run.stdout), run.stdout


def test_binlog_follow_bench_ends_with_source_equal_to_target() -> None:
    label = f"t{secrets.token_hex(3)}"
    run = _run(str(ROOT / "bench" / "binlog_follow.py"), "--seconds", "6", "--rate", "200", "--rows", "2000",
               "--label", label)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"commit-to-visible latency \(s\): median [\d.]+", run.stdout), run.stdout
    assert "SIGTERM: exit 0" in run.stdout and ": EQUAL" in run.stdout, run.stdout
