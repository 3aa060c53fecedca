"""The benchmark must not rot: its smoke run (tiny data, one run each, no
peers) goes through every lakeshift scenario and writes the Markdown table.
Timings are never asserted here; the real numbers are in docs/benchmarks.md."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import PG_DSN, mysql_connect

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_bench_smoke_writes_a_table_with_every_lakeshift_row(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import run as bench  # bench/run.py
    finally:
        sys.path.pop(0)
    out = tmp_path / "results"
    label = f"t{secrets.token_hex(3)}"
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out),
                               "--work", str(tmp_path / "work"), "--label", label],
                              capture_output=True, text=True, timeout=600, cwd=ROOT)
    finally:
        with mysql_connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `lakeshift_bench_{label}`")
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            for schema in bench.schemas(f"_{label}"):
                pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = list(out.glob("*.md"))
    assert len(reports) == 1, list(out.iterdir())
    text = reports[0].read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    for name, (kind, what) in bench.SCENARIOS.items():
        assert what in rows, f"no row for {name}: {what}"
        if kind in ("lakeshift", "raw"):  # measured: a median in seconds, not 'not measured'
            assert re.search(r"\| \d+\.\d\d \[", rows[what]), rows[what]
        else:  # the peers are skipped in a smoke run, and say so
            assert "skipped" in rows[what], rows[what]
    assert "raw extract + raw load" in text
    for target in ("full sync ≤ 1.0×", "backup-only ≤ 1.2×", "peak RSS ≤ 250 MB", "no-change run over 20 tables"):
        assert target in text
    data = json.loads(reports[0].with_suffix(".json").read_text())
    assert data["database"] == f"lakeshift_bench_{label}"
