"""What `sync --json` prints and `sync --metrics-file` writes about the run just made."""

from __future__ import annotations

import logging
from typing import Any

from lakeshift.monitor import jsonout
from lakeshift.monitor.snapshot import one_line_error

log = logging.getLogger("lakeshift.monitor")


def sync_document(report: Any) -> dict[str, Any]:
    plan = report.plan
    p = plan.pipeline
    tables = []
    for o in report.outcomes:
        r = o.result
        tables.append({
            "table": o.name, "status": o.status,
            "rows_extracted": r.rows_extracted if r else None, "rows_loaded": r.rows_loaded if r else None,
            "rows_deleted": r.rows_deleted if r else None, "batches_written": r.batches_written if r else None,
            "batches_loaded": r.batches_loaded if r else None, "seconds": jsonout.seconds(r.seconds) if r else None,
            "notes": list(r.notes) if r else [],
            "error": one_line_error(str(o.error) or type(o.error).__name__) if o.error is not None else None,
            "blocked_by": o.blocked_by,
        })
    return {"pipeline": p.key, "name": p.name, "source": p.pipeline.source if plan.stages.extract else None,
            "target": p.pipeline.target if plan.stages.load else None,
            "stages": {"extract": plan.stages.extract, "load": plan.stages.load},
            "ok": report.ok, "seconds": jsonout.seconds(report.seconds), "tables": tables}


def check_metrics_path(path: str) -> None:
    from lakeshift.monitor.metrics import check_path

    check_path(path)


def write_metrics(report: Any, path: str) -> None:
    """This run's numbers per table, with the last success, lag and batches waiting read back from
    the lake and the target (a table whose state cannot be read still gets this run's numbers)."""
    from datetime import datetime, timezone

    from lakeshift.monitor.metrics import TableMetrics, from_outcome, from_status, write_file
    from lakeshift.monitor.snapshot import read_pipeline

    plan = report.plan
    stored: dict[str, TableMetrics] = {}
    try:
        found = read_pipeline(plan.config, plan.pipeline, datetime.now(timezone.utc))
        stored = {t.table: from_status(t) for t in found.tables}
    except Exception as exc:  # noqa: BLE001 - the run's own numbers are still worth writing
        log.warning("metrics: the stored state could not be read (%s); writing this run's numbers only", exc)
    tables = [from_outcome(o, stored.get(o.name) or TableMetrics(plan.pipeline.key, o.name, "never"),
                           plan.stages.load) for o in report.outcomes]
    write_file(path, tables)
