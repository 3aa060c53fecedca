"""What a table's configuration means against its MySQL table, checked before
anything is read: the merge key and where it came from, refusals (one line
each) and warnings. Used by a run, `--dry-run` and `config validate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lakeshift.config.models import TableConfig
from lakeshift.engine.merge_key import MergeKey, batch_mode, check_strategy, resolve_merge_key
from lakeshift.errors import ConfigError
from lakeshift.source.custom_sql import check_output_columns
from lakeshift.source.keys import KeyCol

_WINDOW_KINDS = ("temporal", "int", "decimal")  # cursor kinds a target orders like MySQL


@dataclass
class TableCheck:
    key: MergeKey
    mode: str  # merge | replace | append (of the table's batches of rows)
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """For --dry-run: what the load does and on which key."""
        if self.mode == "replace":
            return "replace whole table" + (f"; key {self.key.describe()}" if self.key.columns else "")
        if self.mode == "merge":
            return f"merge on {self.key.describe()}"
        return "append (no key: each window read replaces the target's rows in that window)"


def check_table(name: str, cfg: TableConfig, desc: Any) -> TableCheck:
    """Raises ConfigError (one line, naming tables.NAME) when the table cannot
    be synced right; returns the key, the load mode and warnings otherwise."""
    check_output_columns(name, cfg, desc)
    key = resolve_merge_key(name, cfg, desc)
    check_strategy(name, cfg, key, desc)
    mode = batch_mode(cfg, key)
    if mode == "append" and cfg.hard_deletes != "ignore":
        raise ConfigError(
            f"tables.{name}: hard_deletes: {cfg.hard_deletes} finds deleted rows by their key, but MySQL "
            f"{desc.full_name} has no key; set primary_key, or hard_deletes: ignore")
    ts = cfg.cdc_timestamp_column if cfg.cdc_strategy in ("hybrid", "timestamp_only") else None
    info = desc.info(ts) if ts else None
    if mode == "append" and info is not None:
        col = KeyCol.of(info)
        if col is None or col.kind not in _WINDOW_KINDS:
            raise ConfigError(
                f"tables.{name}: MySQL {desc.full_name} has no key, so each run replaces the target's rows of the "
                f"window it read, but cdc_timestamp_column {ts!r} is {info.column_type}, which the target does not "
                f"order like MySQL; set primary_key, or use a DATETIME/TIMESTAMP/integer cdc_timestamp_column")
    warnings = []
    if info is not None and cfg.lookback is None and info.whole_seconds:
        warnings.append(
            f"tables.{name}: cdc_timestamp_column {ts!r} is {info.column_type} (whole seconds) and no lookback is "
            f"set: a row committed after a run with a timestamp before the last one read is never read; set "
            f"lookback (e.g. lookback: 5m) to read recent rows again")
    return TableCheck(key, mode, warnings)


@dataclass
class SourceReport:
    problems: list[str] = field(default_factory=list)  # each one line, naming the file and the table
    warnings: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # why a pipeline could not be checked


def check_against_source(config: Any, pipeline: Any) -> SourceReport:
    """`config validate`: describe each table of `pipeline` in MySQL (quickly:
    no retries, a short connect timeout) and check it as a run would."""
    from lakeshift.config.validate import pipeline_display
    from lakeshift.errors import LakeshiftError
    from lakeshift.source import MySQLReader

    report = SourceReport()
    display = pipeline_display(config, pipeline)
    name = pipeline.pipeline.source
    try:
        src = config.source(name)
    except LakeshiftError as exc:
        report.unchecked.append(f"{display}: not checked against MySQL ({exc})")
        return report
    quick = src.model_copy(update={
        "connect_timeout": min(src.connect_timeout or 10, 10),
        "connection_pool": src.connection_pool.model_copy(update={"retry_attempts": 0, "min_connections": 0})})
    reader = MySQLReader(quick, config.settings)
    try:
        for table, cfg in pipeline.tables.items():
            try:
                desc = reader.describe(cfg.full_name or table, cfg)
                missing = missing_columns(table, cfg, desc)
                if missing:  # every configured column MySQL lacks, not only the first
                    report.problems.extend(f"{display}: {m}" for m in missing)
                    continue
                checked = check_table(table, cfg, desc)
            except ConfigError as exc:
                report.problems.append(f"{display}: {exc}")
                continue
            except LakeshiftError as exc:
                if not _reachable(exc):
                    report.unchecked.append(f"{display}: not checked against MySQL source {name!r} ({exc})")
                    break
                report.problems.append(f"{display}: tables.{table}: {exc}")
                continue
            report.warnings.extend(f"{display}: {w}" for w in checked.warnings)
    finally:
        reader.close()
    return report


def missing_columns(name: str, cfg: TableConfig, desc: Any) -> list[str]:
    """One line per configured column (cursor, key, required) that the MySQL table does not have."""
    have = {i.name for i in desc.infos}
    configured = [("cdc_timestamp_column", cfg.cdc_timestamp_column), ("cdc_id_column", cfg.cdc_id_column)]
    configured += [("primary_key", c) for c in cfg.primary_key or []]
    configured += [("validation.required_columns", c) for c in cfg.validation.required_columns]
    return [f"tables.{name}.{key}: MySQL table {desc.full_name} has no column {column!r} "
            f"(columns: {', '.join(i.name for i in desc.infos)})"
            for key, column in configured if column and column not in have]


def _reachable(exc: Exception) -> bool:
    from lakeshift.errors import ConnectionFailed, TransientSourceError

    return not isinstance(exc, (ConnectionFailed, TransientSourceError))
