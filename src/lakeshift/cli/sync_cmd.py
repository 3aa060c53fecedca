"""`lakeshift sync ...`: pipeline, connections and the v1.0 `sync -t db.table`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click
from rich.table import Table

from lakeshift.engine.plan import Plan, Stages, build_plan
from lakeshift.errors import LakeshiftError

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
    ]
    for option in reversed(options):
        f = option(f)
    return f


def execute(plan: Plan, dry_run: bool) -> None:
    if dry_run:
        show_preview(plan)
        return
    from lakeshift.engine.runner import run_plan

    p = plan.pipeline
    console.print(f"Pipeline {p.key}: {p.pipeline.source} -> {p.pipeline.target} "
                  f"({'parallel' if plan.parallel else 'sequential'}, {len(plan.tables)} table(s))")
    report = run_plan(plan)
    show_summary(report)
    if not report.ok:
        failed = [o.name for o in report.outcomes if o.status == "failed"]
        skipped = [o.name for o in report.outcomes if o.status == "skipped"]
        first = next(o for o in report.outcomes if o.status == "failed") if failed else None
        msg = f"{len(failed)} table(s) failed ({', '.join(failed)})"
        if skipped:
            msg += f", {len(skipped)} skipped ({', '.join(skipped)})"
        if first is not None:
            msg += f"; {first.name}: {first.error}"
        raise SyncFailed(msg)


def show_summary(report: Any) -> None:
    table = Table("table", "status", "extracted", "loaded", "deleted", "batches written", "batches loaded", "seconds", "note",
                  title="Summary")
    for o in report.outcomes:
        r = o.result
        note = (", ".join(r.notes) if r and r.notes else "") if o.status == "ok" else (
            f"after {o.blocked_by} failed" if o.status == "skipped" else str(o.error).splitlines()[0][:120])
        table.add_row(o.name, o.status, f"{r.rows_extracted:,}" if r else "-", f"{r.rows_loaded:,}" if r else "-",
                      f"{r.rows_deleted:,}" if r else "-", str(r.batches_written) if r else "-", str(r.batches_loaded) if r else "-",
                      f"{r.seconds:.2f}" if r else "-", note)
    console.print(table)
    console.print(f"Done in {report.seconds:.2f}s")


def show_preview(plan: Plan) -> None:
    from lakeshift.engine.dry_run import preview

    console.print(f"DRY RUN: nothing is written. Pipeline {plan.pipeline.key} "
                  f"({'parallel' if plan.parallel else 'sequential'}); tables in dependency order:")
    for i, row in enumerate(preview(plan), 1):
        console.print(f"{i}. {row.name}  [{row.strategy}]" + (f"  after {', '.join(row.depends_on)}" if row.depends_on else ""))
        console.print(f"   source:  {row.source}  window: {row.window}")
        console.print(f"   lake:    {row.lake}")
        console.print(f"   target:  {row.target}  ({row.merge})")
        console.print(f"   deletes: {row.deletes}")
        console.print(f"   pending batches: {', '.join(row.pending) if row.pending else 'none'}"
                      + (f"  (never loaded: {row.not_loaded})" if row.not_loaded else ""))
        for warning in row.warnings:
            console.print(f"   warning: {warning}")


@click.group(invoke_without_command=True)
@click.option("--table", "-t", "tables", multiple=True, help="v1.0 syntax: table (db.table) on the default pipeline.")
@stage_options
@click.pass_context
def sync(ctx: click.Context, tables: tuple[str, ...], backup_only: bool, load_only: bool,
         limit: int | None, dry_run: bool) -> None:
    """Sync tables: `sync pipeline`, `sync connections`, or v1.0 `sync -t db.table`."""
    if ctx.invoked_subcommand is not None:
        if tables:
            raise click.UsageError("put -t after the subcommand, e.g. `lakeshift sync pipeline -p P -t T`")
        return
    if not tables:
        click.echo(ctx.get_help())
        return
    ctx.invoke(legacy, tables=tables, backup_only=backup_only, load_only=load_only, limit=limit, dry_run=dry_run)


@sync.command("pipeline")
@click.option("--pipeline", "-p", required=True, help="Pipeline name (pipelines/NAME.yml).")
@click.option("--table", "-t", "tables", multiple=True, help="Table of the pipeline (repeatable).")
@click.option("--all", "all_tables", is_flag=True, help="Every table of the pipeline.")
@click.option("--force-deletes", is_flag=True, help="Apply rows deleted in MySQL (hard_deletes) even when they "
              "are more than max_delete_fraction of the target table.")
@click.option("--follow", is_flag=True, help="cdc_strategy binlog: keep reading the binlog and load a batch every "
              "--interval (or every --max-changes changes) until SIGTERM/SIGINT, which end it after the current batch.")
@click.option("--interval", default="5s", show_default=True, help="--follow: time between batches (e.g. 2s, 500ms).")
@click.option("--max-changes", type=click.IntRange(min=1), help="Binlog tables: a batch ends at the first commit "
              "past this many changes (the rest is read next). Default with --follow: 100000; else no limit.")
@stage_options
@click.pass_obj
def sync_pipeline(app: Any, pipeline: str, tables: tuple[str, ...], all_tables: bool, force_deletes: bool,
                  follow: bool, interval: str, max_changes: int | None, backup_only: bool, load_only: bool,
                  limit: int | None, dry_run: bool) -> None:
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
    execute(plan, dry_run)


@sync.command("connections")
@click.option("--source", "-s", required=True, help="Source connection name.")
@click.option("--target", "-r", required=True, help="Target connection name.")
@click.option("--table", "-t", "tables", multiple=True, required=True, help="Table to sync (repeatable).")
@stage_options
@click.pass_obj
def sync_connections(app: Any, source: str, target: str, tables: tuple[str, ...], backup_only: bool,
                     load_only: bool, limit: int | None, dry_run: bool) -> None:
    """Sync tables between two named connections (ad-hoc pipeline, hybrid on updated_at,id)."""
    cfg = app.config
    p = cfg.adhoc_pipeline(source, target, list(tables))
    execute(build_plan(cfg, p, list(tables), Stages.from_flags(backup_only, load_only), limit), dry_run)


@sync.command("legacy", hidden=True)
@click.option("--table", "-t", "tables", multiple=True, required=True, help="Table names (v1.0 syntax).")
@stage_options
@click.pass_obj
def legacy(app: Any, tables: tuple[str, ...], backup_only: bool, load_only: bool, limit: int | None,
           dry_run: bool) -> None:
    """v1.0 sync on the default pipeline (same as `sync -t db.table`)."""
    cfg = app.config
    p = cfg.pipeline("default")
    execute(build_plan(cfg, p, list(tables), Stages.from_flags(backup_only, load_only), limit,
                       legacy_tables=True), dry_run)


commands = [sync]
