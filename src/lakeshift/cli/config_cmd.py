"""`lakeshift config ...`: list, show, validate and initialise configuration."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from lakeshift.config.legacy import write_config
from lakeshift.config.report import pipeline_rows, validate_config, visible_connections
from lakeshift.config.validate import check_pipeline, pipeline_errors
from lakeshift.engine.history import describe_history
from lakeshift.errors import ConfigError

from lakeshift.cli.jsonout import emit
from lakeshift.cli.output import console


@click.group()
def config() -> None:
    """Configuration management commands."""


@config.command("list-pipelines")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (see docs/json.md).")
@click.pass_obj
def list_pipelines(app, as_json: bool) -> None:
    """List available pipelines; broken ones are listed as broken with their first problem."""
    rows = pipeline_rows(app.config)
    if as_json:
        emit("pipelines", {"pipelines": rows})
        return
    table = Table("pipeline", "name", "source -> target", "tables", "status", "description")
    for r in rows:
        arrow = f"{r['source']} -> {r['target']}" if r["source"] else "?"
        table.add_row(r["pipeline"], r["name"] or "?", arrow, "" if r["tables"] is None else str(r["tables"]),
                      r["status"], r["description"] or "")
    console.print(table)
    for r in rows:  # plain lines, never cut by the table: one per problem
        for problem in r["problems"]:
            click.echo(f"{r['pipeline']}: {r['status']}: {problem}")


@config.command("show-pipeline")
@click.argument("pipeline")
@click.pass_obj
def show_pipeline(app, pipeline: str) -> None:
    """Show a pipeline's settings and tables."""
    p = app.config.pipeline(pipeline)
    s = p.pipeline
    console.print(f"Pipeline: {p.name} ({p.key})  version {s.version}")
    if s.description:
        console.print(f"Description: {s.description}")
    console.print(f"Source: {s.source}   Target: {s.target}   Storage: {s.s3.storage}")
    console.print(
        f"Processing: {s.processing.strategy}, batch_size {s.processing.batch_size}, "
        f"max_parallel_tables {s.processing.max_parallel_tables}"
    )
    console.print(
        f"Lake: prefix '{p.isolation_prefix}', partitions {s.s3.partition_strategy}, compression {s.s3.compression}"
    )
    table = Table("table", "source", "target", "type", "cdc", "cursor", "lookback", "batch", "depends on")
    for name, t in p.tables.items():
        cursor = ", ".join(c for c in (t.cdc_timestamp_column, t.cdc_id_column) if c)
        lookback = _duration(t.lookback) if t.lookback else ""
        batch = str(t.processing.batch_size or s.processing.batch_size)
        table.add_row(name, "custom_sql" if t.custom_sql else t.full_name or name, t.target_name or name, t.table_type, t.cdc_strategy, cursor,
                      lookback, batch, ", ".join(t.depends_on))
    console.print(table)
    for name, t in p.tables.items():
        history = describe_history(t)
        if history:
            console.print(f"{name}: {history}")


def _duration(value: object) -> str:
    seconds = int(value.total_seconds())  # type: ignore[attr-defined]
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@config.command("validate-pipeline")
@click.argument("pipeline")
@click.pass_obj
def validate_pipeline(app, pipeline: str) -> None:
    """Validate one pipeline (exit 1 with every problem listed if invalid)."""
    p = app.config.pipeline(pipeline)
    _raise_problems(pipeline_errors(app.config, p))
    console.print(f"Pipeline {p.key} is valid: {len(p.tables)} table(s)")


def _raise_problems(problems: list[str]) -> None:
    """Every problem on stdout (the report), then the one error line on stderr."""
    if not problems:
        return
    if len(problems) > 1:
        click.echo(f"{len(problems)} problems:")
        for e in problems:
            click.echo(f"  - {e}")
        raise ConfigError(f"{problems[0]} (and {len(problems) - 1} more problem(s), listed above)")
    raise ConfigError(problems[0])


@config.command("validate")
@click.option("--live/--offline", default=True, show_default=True,
              help="--live checks every table and its configured columns against MySQL (keys, cursor columns); "
                   "--offline checks files and connections only.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (see docs/json.md).")
@click.pass_obj
def validate_all(app, live: bool, as_json: bool) -> None:
    """Validate the whole config folder and report EVERY problem, one line each
    (`file: key.path: reason (line N)`): files, connections, every pipeline and,
    unless --offline, each table against its MySQL table. Exit 1 if any."""
    cfg = app.config
    result = validate_config(cfg, live)
    unusable = [f"{c.kind}.{c.name} (needs {', '.join(sorted(set(c.unresolved.values())))})"
                for c in visible_connections(cfg) if c.unresolved]
    if as_json:
        emit("config_validate", {
            "ok": not result.problems, "config_dir": str(cfg.root), "environment": cfg.env_name, "live": live,
            "problems": [p.as_dict() for p in result.problems], "warnings": result.warnings,
            "unchecked": result.unchecked, "not_usable": unusable, "pipelines": result.pipelines})
    elif result.problems:
        click.echo(f"{len(result.problems)} problem(s):")
        for p in result.problems:
            click.echo(f"  - {p}")
        for note in result.notes:
            click.echo(note)
    if result.problems:
        first, more = result.problems[0].text, len(result.problems) - 1
        raise ConfigError(first + (f" (and {more} more problem(s), listed above)" if more else ""))
    if as_json:
        return
    console.print(
        f"Config {cfg.root} is valid: {len(cfg.pipelines)} pipeline(s), {len(cfg.sources)} source(s), "
        f"{len(cfg.targets)} target(s), {len(cfg.storage)} storage(s)"
        + (f"; environment {cfg.env_name}" if cfg.env_name else "")
    )
    for u in unusable:
        console.print(f"  not usable until its variables are set: {u}")
    for note in result.notes:
        click.echo(note)


@config.command("init")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_obj
def init(app, force: bool) -> None:
    """Write a config folder from the v1.0 environment (.env); secrets stay ${VAR} references."""
    from lakeshift.config.loader import load_dotenv_file

    load_dotenv_file()
    root = Path(app.config_dir or "config")
    written = write_config(root, os.environ, force=force)
    for path in written:
        console.print(f"wrote {path}")
    console.print("Secrets are written as ${VAR} references; keep their values in the environment or .env.")


__all__ = ["config", "check_pipeline"]
