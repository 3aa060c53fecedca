"""The fields of the `--json` documents of sync, status, freshness and history
(schema: docs/json.md). Times are ISO-8601 UTC, durations in seconds."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from lakeshift.batch import Cursor
from lakeshift.load.state import RunRecord, as_utc
from lakeshift.monitor.freshness import Freshness
from lakeshift.monitor.snapshot import PipelineStatus, TableStatus, one_line_error, run_seconds


def emit(kind: str, payload: dict[str, Any]) -> None:
    """The shared envelope (cli/jsonout.py: version, kind), plus when the document was made."""
    from lakeshift.cli.jsonout import emit as emit_document

    emit_document(kind, {"generated_at": iso(datetime.now(timezone.utc)), **payload})


def iso(value: datetime | str | None) -> str | None:
    ts = as_utc(value)
    return ts.isoformat() if ts else None


def seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def cursor(value: Cursor | None) -> dict[str, Any] | None:
    if value is None:
        return None
    data = value.to_dict()
    data.pop("ties", None)  # an internal checksum, not a position
    return data


def run(record: RunRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "started_at": iso(record.started_at), "finished_at": iso(record.finished_at), "status": record.status,
        "rows_extracted": record.rows_extracted, "rows_loaded": record.rows_loaded,
        "rows_deleted": record.rows_deleted, "batches": record.batches, "seconds": seconds(run_seconds(record)),
        "error": one_line_error(record.error), "notes": record.notes,
    }


def table_status(st: TableStatus) -> dict[str, Any]:
    return {
        "pipeline": st.pipeline, "table": st.table, "strategy": st.strategy, "target_table": st.target_table,
        "last_run": run(st.last_run), "last_success_at": iso(st.last_success_at),
        "last_error": one_line_error(st.last_error.error) if st.last_error else None,
        "last_error_at": iso(st.last_error.finished_at) if st.last_error else None,
        "last_refusal": run(st.last_refusal),
        "watermark": cursor(st.watermark), "watermark_source": st.watermark_source,
        "batches_waiting": st.batches_waiting, "rows_waiting": st.rows_waiting,
        "newest_loaded_timestamp": iso(st.newest_loaded_at), "lag_seconds": seconds(st.lag_seconds),
        "problems": st.problems,
    }


def pipelines(found: list[PipelineStatus]) -> list[dict[str, Any]]:
    return [{"pipeline": p.key, "name": p.name, "target": p.target, "target_error": p.target_error}
            for p in found]


def freshness(result: Freshness) -> dict[str, Any]:
    st = result.status
    return {
        "pipeline": st.pipeline, "table": st.table, "status": result.verdict,
        "warn_after_seconds": seconds(result.warn_after.total_seconds()) if result.warn_after else None,
        "error_after_seconds": seconds(result.error_after.total_seconds()) if result.error_after else None,
        "last_success_at": iso(st.last_success_at), "age_seconds": seconds(result.load_age_seconds),
        "newest_loaded_timestamp": iso(st.newest_loaded_at), "lag_seconds": seconds(st.lag_seconds),
        "reason": result.reason,
    }


def history_row(pipeline: str, record: RunRecord) -> dict[str, Any]:
    return {"pipeline": pipeline, "table": record.table, **(run(record) or {})}
