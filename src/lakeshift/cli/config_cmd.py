"""`lakeshift config ...`: list, show, validate and initialise configuration."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from lakeshift.config.legacy import write_config
from lakeshift.config.validate import check_pipeline, pipeline_errors
from lakeshift.engine.history import describe_history
from lakeshift.engine.table_checks import check_against_source
from lakeshift.errors import ConfigError

from lakeshift.cli.output import console


@click.group()
def config() -> None:
    """Configuration management commands."""


@config.command("list-pipelines")
@click.pass_obj
def list_pipelines(app) -> None:
    """List available pipelines."""
    table = Table("pipeline", "name", "source -> target", "tables", "description")
    for key, p in sorted(app.config.pipelines.items()):
        table.add_row(key, p.name, f"{p.pipeline.source} -> {p.pipeline.target}", str(len(p.tables)), p.pipeline.description)
    console.print(table)


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
@click.option("--offline", is_flag=True,
              help="Do not check the tables against MySQL (keys, cursor columns); files and connections only.")
@click.pass_obj
def validate_all(app, offline: bool) -> None:
    """Validate the whole config folder: files, connections, every pipeline and,
    unless --offline, each table against its MySQL table."""
    cfg = app.config
    problems: list[str] = []
    for kind in ("sources", "targets", "storage"):
        for c in getattr(cfg, kind).values():
            if c.usable:  # a connection with unset variables is reported below, not failed
                try:
                    c.require()
                except ConfigError as exc:
                    problems.append(exc.message)
    notes: list[str] = []
    for p in cfg.pipelines.values():
        errors = pipeline_errors(cfg, p)
        problems.extend(errors)
        if not offline and not errors and p.tables:
            report = check_against_source(cfg, p)
            problems.extend(report.problems)
            notes.extend([f"warning: {w}" for w in report.warnings] + report.unchecked)
    if problems:
        for note in notes:
            click.echo(note)
    _raise_problems(problems)
    unusable = [f"{c.kind}.{c.name} (needs {', '.join(sorted(set(c.unresolved.values())))})"
                for kind in ("sources", "targets", "storage") for c in getattr(cfg, kind).values() if c.unresolved]
    console.print(
        f"Config {cfg.root} is valid: {len(cfg.pipelines)} pipeline(s), {len(cfg.sources)} source(s), "
        f"{len(cfg.targets)} target(s), {len(cfg.storage)} storage(s)"
        + (f"; environment {cfg.env_name}" if cfg.env_name else "")
    )
    for u in unusable:
        console.print(f"  not usable until its variables are set: {u}")
    for note in notes:
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
