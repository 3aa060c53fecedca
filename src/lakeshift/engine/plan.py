"""What a sync will do: the tables in dependency order and, per table, the
resolved settings. Pure data; building it touches no database."""

from __future__ import annotations

from dataclasses import dataclass

from lakeshift.config.loader import Config
from lakeshift.config.models import PipelineConfig, TableConfig
from lakeshift.config.validate import check_pipeline, dependency_levels
from lakeshift.errors import ConfigError
from lakeshift.identifiers import split_table_name


@dataclass(frozen=True)
class Stages:
    extract: bool = True
    load: bool = True

    @classmethod
    def from_flags(cls, backup_only: bool, load_only: bool) -> Stages:
        if backup_only and load_only:
            raise ConfigError("--backup-only and --redshift-only/--load-only exclude each other; pass one")
        return cls(extract=not load_only, load=not backup_only)


@dataclass(frozen=True)
class TablePlan:
    name: str  # the pipeline's table key; also the lake folder
    config: TableConfig
    source_table: str  # as configured: 'table' or 'schema.table'
    target_table: str
    batch_size: int
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    config: Config
    pipeline: PipelineConfig
    tables: list[TablePlan]  # dependency order
    stages: Stages
    limit: int | None = None
    force_deletes: bool = False  # --force-deletes: delete batches past max_delete_fraction are written too
    parallel_tables: int | None = None  # --parallel N: overrides processing.strategy / max_parallel_tables
    wait: float | None = None  # --wait SECONDS: wait for another run's table locks instead of failing at once
    max_changes: int | None = None  # binlog tables: a batch ends at the first commit past this many changes

    @property
    def parallel(self) -> bool:
        if self.parallel_tables is not None:
            return self.parallel_tables > 1 and len(self.tables) > 1
        return self.pipeline.pipeline.processing.strategy == "parallel" and len(self.tables) > 1

    @property
    def workers(self) -> int:
        """Tables run at once."""
        if not self.parallel:
            return 1
        return self.parallel_tables or self.pipeline.pipeline.processing.max_parallel_tables


def build_plan(
    config: Config,
    pipeline: PipelineConfig,
    table_names: list[str],
    stages: Stages,
    limit: int | None = None,
    legacy_tables: bool = False,
    force_deletes: bool = False,
) -> Plan:
    """Resolve the tables to run. `legacy_tables`: v1.0 `sync -t db.table` on the
    default pipeline, where undeclared tables get the v1.0 behaviour."""
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be a positive number of rows (got {limit})")
    if not table_names:
        raise ConfigError(f"no tables selected; pass -t TABLE (tables of {pipeline.key}: "
                          f"{', '.join(pipeline.tables) or '(none)'}) or --all")
    tables = {n: config.table(pipeline, n, legacy_ok=legacy_tables) for n in dict.fromkeys(table_names)}
    if legacy_tables:
        pipeline = pipeline.model_copy(update={"tables": {**pipeline.tables, **tables}})
    check_pipeline(config, pipeline)
    default_batch = pipeline.pipeline.processing.batch_size
    plans = []
    for name in dependency_levels(pipeline, list(tables)):
        t = tables[name]
        source_table = t.full_name or name
        _, bare = split_table_name(source_table)
        plans.append(TablePlan(
            name=name,
            config=t,
            source_table=source_table,
            target_table=t.target_name or bare,
            batch_size=t.processing.batch_size or default_batch,
            depends_on=tuple(d for d in t.depends_on if d in tables),
        ))
    if limit is not None and stages.extract and stages.load:
        _refuse_limited_snapshots(pipeline, plans, limit)
    return Plan(config=config, pipeline=pipeline, tables=plans, stages=stages, limit=limit, force_deletes=force_deletes)


def _refuse_limited_snapshots(pipeline: PipelineConfig, plans: list[TablePlan], limit: int) -> None:
    """A full_sync load replaces the whole target table with the batch: with --limit, with
    `limit` rows. Refused before anything runs; --backup-only writes a sample instead."""
    full = [f"{pipeline.key}.{t.name}" for t in plans if t.config.cdc_strategy == "full_sync"]
    if full:
        raise ConfigError(
            f"--limit {limit} on full_sync table{'s' if len(full) > 1 else ''} {', '.join(full)} would replace "
            f"the whole target table with {limit} row(s); nothing was run. Pass --backup-only to write a sample "
            "batch to the lake (never loaded), or drop --limit")
