"""The library's one entry point for "sync these tables of this pipeline": the
code `lakeshift sync pipeline -p P -t T ...` runs, for orchestrators (Dagster,
Airflow) and scripts. `pipeline_graph` reads the YAML only, no database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lakeshift import redact
from lakeshift.errors import LakeshiftError, one_line

if TYPE_CHECKING:
    from lakeshift.config.loader import Config
    from lakeshift.engine.dag import Outcome
    from lakeshift.engine.runner import RunReport
    from lakeshift.engine.table_task import TableResult


class TableFailed(LakeshiftError):
    """A table of an orchestrated run failed (its one-line error is the message)."""


@dataclass(frozen=True)
class TableNode:
    """One table of a pipeline as an orchestrator sees it (from the YAML only)."""

    name: str
    depends_on: tuple[str, ...]
    source_table: str  # as configured: 'table' or 'schema.table'
    target_table: str
    cdc_strategy: str


@dataclass(frozen=True)
class PipelineGraph:
    key: str  # pipelines/<key>.yml
    name: str
    source: str  # connection names
    target: str
    target_type: str  # postgres | duckdb | redshift
    source_max_connections: int  # the source's connection_pool.max_connections
    tables: list[TableNode]  # dependency order


def load(config_dir: str | Path | None, env: str | None = None) -> Config:
    """The config folder as the CLI loads it (`.env` of the working directory first)."""
    from lakeshift.config.loader import load_config, load_dotenv_file

    load_dotenv_file()
    return load_config(config_dir, env)


def pipeline_graph(config: Config | str | Path | None, pipeline: str, env: str | None = None) -> PipelineGraph:
    """The pipeline's tables and dependencies, validated like `sync --dry-run`
    does, without opening a connection (a missing password is not needed yet)."""
    from lakeshift.engine.plan import Stages, build_plan

    cfg = config if _is_config(config) else load(config, env)  # type: ignore[arg-type]
    p = cfg.pipeline(pipeline)
    plan = build_plan(cfg, p, list(p.tables), Stages()) if p.tables else None  # no tables: an empty graph
    src = cfg.connection("sources", p.pipeline.source)
    pool = getattr(src.model, "connection_pool", None)
    return PipelineGraph(
        key=p.key, name=p.pipeline.name, source=p.pipeline.source, target=p.pipeline.target,
        target_type=cfg.connection("targets", p.pipeline.target).type,
        source_max_connections=pool.max_connections if pool is not None else 5,
        tables=[TableNode(t.name, t.depends_on, t.source_table, t.target_table, t.config.cdc_strategy)
                for t in (plan.tables if plan else [])],
    )


def sync_tables(config: Config | str | Path | None, pipeline: str, tables: Sequence[str] | None = None,
                env: str | None = None, *, backup_only: bool = False, load_only: bool = False,
                force_deletes: bool = False, live_progress: bool = False) -> RunReport:
    """Run `lakeshift sync pipeline -p PIPELINE -t T ...` (every table when `tables`
    is None) in this process and return its report; a failed table is in the
    report, not raised (see `raise_for_failures`)."""
    from lakeshift.engine.plan import Stages, build_plan
    from lakeshift.engine.runner import run_plan

    cfg = config if _is_config(config) else load(config, env)  # type: ignore[arg-type]
    p = cfg.pipeline(pipeline)
    names = list(p.tables) if tables is None else list(tables)
    plan = build_plan(cfg, p, names, Stages.from_flags(backup_only, load_only), force_deletes=force_deletes)
    return run_plan(plan, live_progress=live_progress)


def outcome_error(outcome: Outcome[TableResult]) -> str:
    """The one line the CLI would print for a failed or skipped table (secrets redacted)."""
    if outcome.status == "skipped":
        return f"{outcome.name}: skipped because {outcome.blocked_by} did not succeed"
    return one_line(redact.redact(f"{outcome.name}: {outcome.error}"))


def raise_for_failures(report: RunReport) -> None:
    """TableFailed naming every failed table (its first line), after all succeeded ones ran."""
    bad = [o for o in report.outcomes if o.status != "ok"]
    if bad:
        raise TableFailed("; ".join(outcome_error(o) for o in bad))


def _is_config(value: object) -> bool:
    from lakeshift.config.loader import Config

    return isinstance(value, Config)
