"""`lakeshift status | freshness | history | metrics`: what each table's state is,
read from the lake and the target only (no MySQL connection)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import click

from lakeshift.cli.output import console
from lakeshift.config.models import parse_duration
from lakeshift.errors import ConfigError, LakeshiftError
from lakeshift.monitor import freshness as fresh
from lakeshift.monitor import jsonout
from lakeshift.monitor.snapshot import PipelineStatus, TableStatus, one_line_error, read_pipelines, run_seconds

_pipeline_option = click.option("--pipeline", "-p", "pipelines", multiple=True,
                                help="Pipeline (repeatable); default: every pipeline.")
_json_option = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (docs/json.md).")


def _when(ts: datetime | None, now: datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M:%S} ({fresh.human((now - ts).total_seconds())} ago)" if ts else "never"


def _ts(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else "-"


def _watermark(st: TableStatus) -> str:
    w = st.watermark
    if st.strategy == "full_sync":
        return "(full_sync)"
    if w is None:
        return "none"
    if w.binlog is not None:
        return w.binlog.describe()
    return ", ".join(f"{k}={v}" for k, v in (("ts", w.timestamp), ("id", w.id)) if v is not None)


def _last_run(st: TableStatus) -> str:
    r = st.last_run
    if r is None:
        return "never"
    secs = run_seconds(r)
    return (f"{r.status} {_ts(r.finished_at)}  {r.rows_extracted:,}/{r.rows_loaded:,}/{r.rows_deleted:,}"
            + (f"  {secs:.1f}s" if secs is not None else ""))


@click.command("status")
@_pipeline_option
@_json_option
@click.pass_obj
def status(app: Any, pipelines: tuple[str, ...], as_json: bool) -> None:
    """Each table: last run, last success, watermark, batches waiting in the lake, last error, lag."""
    now = datetime.now(timezone.utc)
    found = read_pipelines(app.config, list(pipelines), now)
    if as_json:
        jsonout.emit("status", {"pipelines": jsonout.pipelines(found),
                                "tables": [jsonout.table_status(t) for p in found for t in p.tables]})
        return
    for p in found:
        _print_status(p, now)


def _table(*columns: str, title: str) -> Any:
    from rich.table import Table  # not imported for --json (start-up time)

    return Table(*columns, title=title)


def _print_status(p: PipelineStatus, now: datetime) -> None:
    out = _table("table", "strategy", "last run (extracted/loaded/deleted)", "last success", "watermark", "waiting",
                "lag", "last error", title=f"Pipeline {p.key} -> {p.target}")
    for st in p.tables:
        waiting = ("?" if st.batches_waiting is None else
                   f"{st.batches_waiting} ({st.rows_waiting or 0:,} rows)" if st.batches_waiting else "0")
        error = one_line_error(st.last_error.error, 120) if st.last_error else ""
        if st.last_refusal is not None:
            error = (error + "; " if error else "") + f"refused: {one_line_error(st.last_refusal.error, 80)}"
        if st.problems:
            error = (error + "; " if error else "") + "; ".join(st.problems)
        out.add_row(st.table, st.strategy, _last_run(st), _when(st.last_success_at, now), _watermark(st), waiting,
                    fresh.human(st.lag_seconds) if st.lag_seconds is not None else "-", error)
    console.print(out)
    if p.target_error:
        click.secho(f"Warning: pipeline {p.key}: the target could not be read: {p.target_error}", fg="yellow", err=True)


def _duration(value: str | None, option: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


@click.command("freshness")
@_pipeline_option
@click.option("--warn-after", help="Warn when the last successful load is older than this (e.g. 2h); "
              "overrides the tables' freshness.warn_after.")
@click.option("--error-after", help="Error when older than this (e.g. 6h); overrides freshness.error_after.")
@_json_option
@click.pass_context
def freshness(ctx: click.Context, pipelines: tuple[str, ...], warn_after: str | None, error_after: str | None,
              as_json: bool) -> None:
    """Is each table fresh? Exit 0 all fresh, 3 some past warn_after, 4 some past error_after, 1 a command error."""
    warn, error = _duration(warn_after, "--warn-after"), _duration(error_after, "--error-after")
    if warn and error and warn > error:
        raise ConfigError("--warn-after must not be longer than --error-after")
    now = datetime.now(timezone.utc)
    found = read_pipelines(ctx.obj.config, list(pipelines), now)
    results = [fresh.evaluate(t, now, warn, error) for p in found for t in p.tables]
    code = fresh.exit_code(results)
    if as_json:
        jsonout.emit("freshness", {"status": next(k for k, v in (("error", 4), ("warn", 3), ("pass", 0)) if v == code),
                                   "exit_code": code, "pipelines": jsonout.pipelines(found),
                                   "tables": [jsonout.freshness(r) for r in results]})
    else:
        out = _table("pipeline", "table", "status", "last success", "lag", "warn after", "error after", "why",
                    title="Freshness")
        for r in results:
            out.add_row(r.status.pipeline, r.status.table, r.verdict, _when(r.status.last_success_at, now),
                        fresh.human(r.status.lag_seconds) if r.status.lag_seconds is not None else "-",
                        fresh.human(r.warn_after.total_seconds()) if r.warn_after else "-",
                        fresh.human(r.error_after.total_seconds()) if r.error_after else "-", r.reason)
        console.print(out)
    unread = [p for p in found if p.target_error]
    if unread:  # unknown is not fresh, and not an alert on the tables either: a command error
        raise LakeshiftError("; ".join(f"pipeline {p.key}: the target could not be read ({p.target_error})"
                                       for p in unread))
    ctx.exit(code)


@click.command("history")
@_pipeline_option
@click.option("--table", "-t", help="Only this table.")
@click.option("--limit", "-n", type=click.IntRange(1, 100_000), default=20, show_default=True,
              help="Newest runs shown.")
@_json_option
@click.pass_obj
def history(app: Any, pipelines: tuple[str, ...], table: str | None, limit: int, as_json: bool) -> None:
    """Past runs, newest first (kept for the pipeline's run_history_days, default 90)."""
    from lakeshift.monitor.history import read_history

    rows = read_history(app.config, list(pipelines), table, limit)
    if as_json:
        jsonout.emit("history", {"runs": [jsonout.history_row(p, r) for p, r in rows]})
        return
    out = _table("started", "pipeline", "table", "status", "extracted", "loaded", "deleted", "seconds", "error / notes",
                title="Run history")
    for p, r in rows:
        secs = run_seconds(r)
        out.add_row(_ts(r.started_at), p, r.table, r.status, f"{r.rows_extracted:,}",
                    f"{r.rows_loaded:,}", f"{r.rows_deleted:,}", f"{secs:.1f}" if secs is not None else "-",
                    one_line_error(r.error, 120) or r.notes or "")
    console.print(out)
    if not rows:
        console.print("no runs recorded")


@click.command("metrics")
@_pipeline_option
@click.pass_obj
def metrics(app: Any, pipelines: tuple[str, ...]) -> None:
    """Prometheus text format of every table's stored state (what sync --metrics-file writes)."""
    from lakeshift.monitor.metrics import from_status, text

    found = read_pipelines(app.config, list(pipelines))
    click.echo(text([from_status(t) for p in found for t in p.tables]), nl=False)


commands = [status, freshness, history, metrics]
