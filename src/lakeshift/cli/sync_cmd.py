"""`lakeshift sync ...`: pipeline, connections and the v1.0 `sync -t db.table`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click
from rich.table import Column, Table

from lakeshift.config.problems import warn_broken
from lakeshift.engine.plan import Plan, Stages, build_plan
from lakeshift.errors import LakeshiftError, one_line

from lakeshift.cli.output import console


class SyncFailed(LakeshiftError):
    """One or more tables failed; see the summary above."""


def stage_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--backup-only", is_flag=True, help="Only extract: MySQL -> lake (no load)."),
        click.option("--redshift-only", "--load-only", "load_only", is_flag=True,
                     help="Only load the batches waiting in the lake into the target (any target type)."),
        click.option("--limit", type=int, help="At most N rows per table (for testing). Incremental tables: the "
                     "next run goes on from there. full_sync tables: refused, since the load would replace the whole "
                     "target table; with --backup-only it writes a sample batch that is never loaded."),
        click.option("--dry-run", is_flag=True, help="Print the plan; change nothing."),
        click.option("--parallel", "parallel", type=click.IntRange(1, 64), metavar="N",
                     help="Run N tables at once (overrides processing.strategy and max_parallel_tables; 1 = one "
                          "after the other)."),
        click.option("--wait", "wait", type=click.FloatRange(0), is_flag=False, flag_value=3600.0, metavar="[SECONDS]",
                     help="When another run holds a table's lock, wait for it (default 3600s for a bare --wait) "
                          "instead of failing at once."),
    ]
    for option in reversed(options):
        f = option(f)
    return report_options(f)


def report_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--json and --metrics-file (the `as_json` and `metrics_file` arguments of execute)."""
    f = click.option("--metrics-file", type=click.Path(dir_okay=False),
                     help="Write Prometheus text format here after the run (atomically; node_exporter textfile "
                          "collector: name it *.prom).")(f)
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the run summary as one JSON document on stdout (docs/json.md); logs on stderr.")(f)


def execute(plan: Plan, dry_run: bool, parallel: int | None = None, wait: float | None = None,
            as_json: bool = False, metrics_file: str | None = None) -> None:
    warn_broken(plan.config, plan.pipeline.key)  # once the plan is valid: the run goes on without them
    plan = dataclasses.replace(plan, parallel_tables=parallel, wait=wait)
    if dry_run:
        if as_json:
            raise click.UsageError("--json does not apply to --dry-run")
        show_preview(plan)
        return
    from lakeshift.engine.runner import run_plan

    from lakeshift.monitor import run_report

    if metrics_file:
        run_report.check_metrics_path(metrics_file)  # a typo fails now, not after the run
    p = plan.pipeline
    header = (f"Pipeline {p.key}: {p.pipeline.source} -> {p.pipeline.target} "
              f"({'parallel' if plan.parallel else 'sequential'}, {len(plan.tables)} table(s))")
    if as_json:
        click.echo(header, err=True)  # stdout holds the JSON document only
    else:
        console.print(header)
    report = run_plan(plan)
    if as_json:
        from lakeshift.monitor.jsonout import emit

        emit("sync", run_report.sync_document(report))
    else:
        show_summary(report)
    if metrics_file:
        run_report.write_metrics(report, metrics_file)
    if not report.ok:
        raise SyncFailed(failure_line(report.outcomes))


def failure_line(outcomes: list[Any]) -> str:
    """Every failed table with its error, tables failing the same way grouped
    (six tables on one unreachable server is one error, not six)."""
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = [o.name for o in outcomes if o.status == "skipped"]
    msg = f"{len(failed)} table(s) failed ({', '.join(o.name for o in failed)})"
    if skipped:
        msg += f", {len(skipped)} skipped ({', '.join(skipped)})"
    by_error: dict[str, list[str]] = {}
    for o in failed:
        by_error.setdefault(one_line(str(o.error)), []).append(o.name)
    return msg + "".join(f"; {', '.join(names)}: {error}" for error, names in by_error.items())


def show_summary(report: Any) -> None:
    table = Table("table", "status", "extracted", "loaded", "deleted", "batches written", "batches loaded", "seconds",
                  Column("note", overflow="fold"), title="Summary")  # a long error wraps, never cut
    for o in report.outcomes:
        r = o.result
        note = (", ".join(r.notes) if r and r.notes else "") if o.status == "ok" else (
            f"after {o.blocked_by} failed" if o.status == "skipped" else one_line(str(o.error)))
        table.add_row(o.name, o.status, f"{r.rows_extracted:,}" if r else "-", f"{r.rows_loaded:,}" if r else "-",
                      f"{r.rows_deleted:,}" if r else "-", str(r.batches_written) if r else "-", str(r.batches_loaded) if r else "-",
                      f"{r.seconds:.2f}" if r else "-", note)
    console.print(table)
    console.print(f"Done in {report.seconds:.2f}s")


def show_preview(plan: Plan) -> None:
    from lakeshift.engine.dry_run import preview

    console.print(f"DRY RUN: nothing is written. Pipeline {plan.pipeline.key} "
                  f"({'parallel' if plan.parallel else 'sequential'}); tables in dependency order:")
    rows = preview(plan)
    for i, row in enumerate(rows, 1):
        console.print(f"{i}. {row.name}  [{row.strategy}]" + (f"  after {', '.join(row.depends_on)}" if row.depends_on else ""))
        if row.error:
            console.print(f"   ERROR: {one_line(row.error)}")
            continue
        console.print(f"   source:  {row.source}  window: {row.window}")
        console.print(f"   lake:    {row.lake}")
        console.print(f"   target:  {row.target}  ({row.merge})")
        console.print(f"   deletes: {row.deletes}")
        console.print(f"   pending batches: {', '.join(row.pending) if row.pending else 'none'}"
                      + (f"  (never loaded: {row.not_loaded})" if row.not_loaded else ""))
        for warning in row.warnings:
            console.print(f"   warning: {warning}")
    bad = [r for r in rows if r.error]
    if bad:  # every bad table, so one dry run finds them all
        raise SyncFailed(f"{len(bad)} of {len(rows)} table(s) would fail: "
                         + "; ".join(f"{r.name}: {one_line(r.error)}" for r in bad))


@click.group(invoke_without_command=True)
@click.option("--table", "-t", "tables", multiple=True, help="v1.0 syntax: table (db.table) on the default pipeline.")
@stage_options
@click.pass_context
def sync(ctx: click.Context, tables: tuple[str, ...], backup_only: bool, load_only: bool,
         limit: int | None, dry_run: bool, parallel: int | None, wait: float | None, as_json: bool,
         metrics_file: str | None) -> None:
    """Sync tables: `sync pipeline`, `sync connections`, or v1.0 `sync -t db.table`."""
    if ctx.invoked_subcommand is not None:
        if tables:
            raise click.UsageError("put -t after the subcommand, e.g. `lakeshift sync pipeline -p P -t T`")
        return
    if not tables:
        click.echo(ctx.get_help())
        return
    ctx.invoke(legacy, tables=tables, backup_only=backup_only, load_only=load_only, limit=limit, dry_run=dry_run,
               parallel=parallel, wait=wait, as_json=as_json, metrics_file=metrics_file)


@sync.command("pipeline")
@click.option("--pipeline", "-p", required=True, help="Pipeline name (pipelines/NAME.yml).")
@click.option("--table", "-t", "tables", multiple=True, help="Table of the pipeline (repeatable).")
@click.option("--all", "all_tables", is_flag=True, help="Every table of the pipeline.")
@click.option("--force-deletes", is_flag=True, help="Apply rows deleted in MySQL (hard_deletes) even when they "
              "are more than max_delete_fraction of the target table.")
@click.option("--follow", is_flag=True, help="cdc_strategy binlog: keep reading the binlog and load a batch every "
              "--interval (or every --max-changes changes) until SIGTERM/SIGINT, which end it after the current batch.")
@click.option("--interval", default="1s", show_default=True, help="--follow: time between batches (e.g. 5s, 500ms); "
              "a commit is in the target after about half of it plus one or two batches.")
@click.option("--max-changes", type=click.IntRange(min=1), help="Binlog tables: a batch ends at the first commit "
              "past this many changes (the rest is read next). Default with --follow: 100000; else no limit.")
@stage_options
@click.pass_obj
def sync_pipeline(app: Any, pipeline: str, tables: tuple[str, ...], all_tables: bool, force_deletes: bool,
                  follow: bool, interval: str, max_changes: int | None, backup_only: bool, load_only: bool,
                  limit: int | None, dry_run: bool, parallel: int | None, wait: float | None, as_json: bool,
                  metrics_file: str | None) -> None:
    """Sync tables of a configured pipeline."""
    cfg = app.config
    p = cfg.pipeline(pipeline)
    if all_tables and tables:
        raise click.UsageError("pass either -t TABLE ... or --all, not both")
    names = list(p.tables) if all_tables else list(tables)
    if follow and max_changes is None:
        max_changes = 100_000
    plan = build_plan(cfg, p, names, Stages.from_flags(backup_only, load_only), limit, force_deletes=force_deletes)
    if max_changes is not None:
        plan = dataclasses.replace(plan, max_changes=max_changes)
    if follow and not dry_run:
        from lakeshift.cli.follow_cmd import run_follow

        run_follow(plan, interval)
        return
    execute(plan, dry_run, parallel, wait, as_json, metrics_file)


@sync.command("connections")
@click.option("--source", "-s", required=True, help="Source connection name.")
@click.option("--target", "-r", required=True, help="Target connection name.")
@click.option("--table", "-t", "tables", multiple=True, required=True, help="Table to sync (repeatable).")
@stage_options
@click.pass_obj
def sync_connections(app: Any, source: str, target: str, tables: tuple[str, ...], backup_only: bool,
                     load_only: bool, limit: int | None, dry_run: bool, parallel: int | None,
                     wait: float | None, as_json: bool, metrics_file: str | None) -> None:
    """Sync tables between two named connections (ad-hoc pipeline, hybrid on updated_at,id)."""
    cfg = app.config
    p = cfg.adhoc_pipeline(source, target, list(tables))
    execute(build_plan(cfg, p, list(tables), Stages.from_flags(backup_only, load_only), limit), dry_run, parallel, wait,
            as_json, metrics_file)


@sync.command("legacy", hidden=True)
@click.option("--table", "-t", "tables", multiple=True, required=True, help="Table names (v1.0 syntax).")
@stage_options
@click.pass_obj
def legacy(app: Any, tables: tuple[str, ...], backup_only: bool, load_only: bool, limit: int | None,
           dry_run: bool, parallel: int | None, wait: float | None, as_json: bool = False,
           metrics_file: str | None = None) -> None:
    """v1.0 sync on the default pipeline (same as `sync -t db.table`)."""
    cfg = app.config
    p = cfg.pipeline("default")
    execute(build_plan(cfg, p, list(tables), Stages.from_flags(backup_only, load_only), limit,
                       legacy_tables=True), dry_run, parallel, wait, as_json, metrics_file)


commands = [sync]
