"""`lakeshift history`: past runs from `_lakeshift_runs`, and the pruning each run does."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from lakeshift.config.loader import Config
from lakeshift.config.models import PipelineConfig
from lakeshift.load.state import RunRecord, as_utc

log = logging.getLogger("lakeshift.monitor")


def read_history(config: Config, keys: list[str], table: str | None, limit: int) -> list[tuple[str, RunRecord]]:
    """(pipeline key, run), newest first, at most `limit`."""
    from lakeshift.load import open_target

    from lakeshift.monitor.snapshot import chosen_pipelines

    pipelines = chosen_pipelines(config, keys)
    if table is not None and keys:
        for p in pipelines:
            config.table(p, table, legacy_ok=p.key == "default")  # a typo is an error, not an empty history
    rows: list[tuple[str, RunRecord]] = []
    for p in pipelines:
        loader: Any = open_target(config.target(p.pipeline.target), config.settings)
        try:
            rows.extend((p.key, r) for r in loader.state.pipeline_runs(p.name, limit, table))
        finally:
            loader.close()
    rows.sort(key=lambda pr: as_utc(pr[1].started_at) or datetime.min.replace(tzinfo=timezone.utc), reverse=True)
    return rows[:limit]


def prune(pipeline: PipelineConfig, loader: Any, now: datetime | None = None) -> None:
    """Delete the pipeline's runs older than run_history_days. Never fails a run: one warning line."""
    days = pipeline.pipeline.run_history_days
    before = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    try:
        n = loader.state.prune_runs(pipeline.name, before)
    except Exception as exc:  # noqa: BLE001 - the history is housekeeping; the run's outcome stands
        log.warning("%s: could not prune run history older than %d days: %s", pipeline.name, days, exc)
        return
    if n and n > 0:
        log.info("%s: pruned %d run history row(s) older than %d days (run_history_days)", pipeline.name, n, days)
