"""Prometheus text format for the node_exporter textfile collector: written by
`sync --metrics-file PATH` after a run and printed by `lakeshift metrics` from
the stored state. One series per pipeline and table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Enum, Gauge, generate_latest, write_to_textfile

from lakeshift.errors import LakeshiftError
from lakeshift.monitor.snapshot import TableStatus, run_seconds

STATES = ["ok", "failed", "interrupted", "refused", "skipped", "extracted", "never"]
LABELS = ("pipeline", "table")


@dataclass
class TableMetrics:
    pipeline: str
    table: str
    status: str  # one of STATES
    rows_extracted: int = 0
    rows_loaded: int = 0
    rows_deleted: int = 0
    seconds: float | None = None
    last_success: float | None = None  # unix time
    lag_seconds: float | None = None
    batches_waiting: int | None = None


def from_status(st: TableStatus) -> TableMetrics:
    """The table's last run as stored (a table never run: status `never`)."""
    run = st.last_run
    return TableMetrics(
        st.pipeline, st.table, run.status if run and run.status in STATES else ("failed" if run else "never"),
        run.rows_extracted if run else 0, run.rows_loaded if run else 0, run.rows_deleted if run else 0,
        run_seconds(run) if run else None,
        st.last_success_at.timestamp() if st.last_success_at else None, st.lag_seconds, st.batches_waiting)


def from_outcome(outcome: Any, stored: TableMetrics, loads: bool) -> TableMetrics:
    """This run's numbers for a table (the summary's), with what the state knows besides
    (last success, lag, batches waiting). A --backup-only run that succeeded: `extracted`."""
    r = outcome.result
    status = outcome.status if outcome.status != "ok" else ("ok" if loads else "extracted")
    return TableMetrics(stored.pipeline, stored.table, status,
                        r.rows_extracted if r else 0, r.rows_loaded if r else 0, r.rows_deleted if r else 0,
                        r.seconds if r else None, stored.last_success, stored.lag_seconds, stored.batches_waiting)


def registry(tables: list[TableMetrics]) -> CollectorRegistry:
    reg = CollectorRegistry()
    gauges = {
        "rows_extracted": Gauge("lakeshift_table_rows_extracted", "Rows extracted by the table's last run",
                                LABELS, registry=reg),
        "rows_loaded": Gauge("lakeshift_table_rows_loaded", "Rows loaded by the table's last run", LABELS, registry=reg),
        "rows_deleted": Gauge("lakeshift_table_rows_deleted", "Rows gone from the source applied by the last run",
                              LABELS, registry=reg),
        "seconds": Gauge("lakeshift_table_run_duration_seconds", "Duration of the table's last run", LABELS,
                         registry=reg),
        "last_success": Gauge("lakeshift_table_last_success_timestamp_seconds",
                              "Unix time the table's last successful load finished", LABELS, registry=reg),
        "lag_seconds": Gauge("lakeshift_table_lag_seconds",
                             "Now minus the newest source timestamp loaded (timestamp cursors)", LABELS, registry=reg),
        "batches_waiting": Gauge("lakeshift_table_batches_waiting", "Batches extracted to the lake, not loaded yet",
                                 LABELS, registry=reg),
    }
    status = Enum("lakeshift_table_status", "Outcome of the table's last run", LABELS, states=STATES, registry=reg)
    for t in tables:
        for key, gauge in gauges.items():
            value = getattr(t, key)
            if value is not None:  # unknown stays absent: an alert on 0 would be a false one
                gauge.labels(t.pipeline, t.table).set(value)
        status.labels(t.pipeline, t.table).state(t.status)
    return reg


def text(tables: list[TableMetrics]) -> str:
    return generate_latest(registry(tables)).decode("utf-8")


def check_path(path: str) -> None:
    """PATH can be written: its folder exists and is writable, PATH is not a folder."""
    import os

    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise LakeshiftError(f"--metrics-file {path}: folder {folder} does not exist; create it or pick another path")
    if Path(path).is_dir() or not os.access(folder, os.W_OK):
        raise LakeshiftError(f"--metrics-file {path}: cannot write there (a folder, or {folder} is not writable)")


def write_file(path: str, tables: list[TableMetrics]) -> None:
    """Atomically: a temporary file in the same folder renamed over PATH (a collector never reads half a file)."""
    check_path(path)
    try:
        write_to_textfile(path, registry(tables))
    except OSError as exc:
        raise LakeshiftError(f"--metrics-file {path}: cannot write it ({exc.strerror or exc})") from None

