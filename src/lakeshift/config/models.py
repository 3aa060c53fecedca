"""Typed configuration models. Unknown keys are rejected (see errors.py for
how pydantic errors become one-line messages with file and key path). The
connection models live in connection_models.py, the shared field types in
fields.py; both are importable from here."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from lakeshift.config.connection_models import (
    ConnectionSettings,
    DuckDBTarget,
    LocalStorage,
    MySQLSource,
    PoolSettings,
    PostgresTarget,
    RedshiftTarget,
    S3Storage,
    SSHTunnel,
    Storage,
    Target,
    TLSSettings,
)
from lakeshift.config.fields import Duration, Identifier, Model, TableName, parse_duration


# ---------------------------------------------------------------- pipelines

CDC_STRATEGIES = ("hybrid", "timestamp_only", "id_only", "full_sync", "binlog")
CdcStrategy = Literal["hybrid", "timestamp_only", "id_only", "full_sync", "binlog"]


class TableProcessing(Model):
    batch_size: int | None = Field(None, ge=1, le=10_000_000)
    priority: Literal["high", "medium", "low"] = "medium"


class ValidationRules(Model):
    required_columns: list[Identifier] = Field(default_factory=list)
    max_null_percentage: float | None = Field(None, ge=0, le=100)


_DBT_PERIODS = {"minute": "m", "hour": "h", "day": "d"}


def _dbt_duration(value: Any) -> Any:
    """dbt's `{count: 12, period: hour}` as well as '12h'."""
    if isinstance(value, dict) and set(value) == {"count", "period"} and value["period"] in _DBT_PERIODS:
        return parse_duration(f"{value['count']}{_DBT_PERIODS[value['period']]}")
    return parse_duration(value)


FreshnessAge = Annotated[timedelta, BeforeValidator(_dbt_duration)]


class Freshness(Model):
    """`lakeshift freshness`: how long after the last successful load a table is stale."""

    warn_after: FreshnessAge | None = None
    error_after: FreshnessAge | None = None

    @model_validator(mode="after")
    def _order(self) -> Freshness:
        if self.warn_after and self.error_after and self.warn_after > self.error_after:
            raise ValueError("warn_after must not be longer than error_after")
        return self


class TableConfig(Model):
    full_name: TableName | None = Field(None, description="source table, 'table' or 'schema.table'")
    target_name: Identifier | None = None
    cdc_strategy: CdcStrategy = "hybrid"
    cdc_timestamp_column: Identifier | None = None
    cdc_id_column: Identifier | None = None
    primary_key: list[Identifier] | None = Field(
        None, description="merge key; default: the source's primary key, else a unique index on NOT NULL columns"
    )
    table_type: Literal["fact", "dimension"] = "fact"
    lookback: Duration | None = None
    tinyint1_as_boolean: bool = True
    zero_dates: Literal["null", "error"] = "null"
    processing: TableProcessing = Field(default_factory=TableProcessing)
    validation: ValidationRules = Field(default_factory=ValidationRules)
    depends_on: list[str] = Field(default_factory=list)
    backup_strategy: Literal["sequential", "parallel"] = "sequential"
    watermark_strategy: Literal["automatic", "manual"] = "automatic"
    data_validation: bool = True
    # Rows deleted in MySQL: kept in the target (ignore), removed (delete) or marked in
    # _lakeshift_deleted_at (soft). Incremental tables find them by a key-only comparison after
    # each run; a full_sync with soft marks the rows its snapshot lacks.
    hard_deletes: Literal["ignore", "delete", "soft"] = "ignore"
    # A delete batch larger than this share of the target's rows is refused (--force-deletes).
    max_delete_fraction: float = Field(0.1, ge=0, le=1)
    # v1.3 SCD type 2 history for table_type: dimension (load/strategies/history.py)
    scd_type: Literal["type_2"] | None = None
    business_key: list[Identifier] | None = Field(None, description="the entity's key columns (scd_type: type_2)")
    scd_columns: list[Identifier] | None = Field(
        None, description="a change in these opens a new version; default every non-key column")
    freshness: Freshness | None = None  # `lakeshift freshness` thresholds (dbt's source-freshness shape)
    description: str | None = None
    # v1.2: read this one SELECT instead of the whole table (source/custom_sql.py)
    custom_sql: str | None = None
    # v1.2: checks of each batch before it is loaded (config/quality.py; engine/quality_gate.py)
    data_quality_checks: list[Any] = Field(default_factory=list)

    @field_validator("custom_sql")
    @classmethod
    def _one_select(cls, v: str | None) -> str | None:
        if v is None:  # the common case imports nothing (lakeshift.source pulls in the MySQL reader)
            return None
        from lakeshift.source.custom_sql import check_custom_sql

        return check_custom_sql(v)

    @field_validator("data_quality_checks", mode="before")
    @classmethod
    def _checks(cls, v: Any) -> list[Any]:
        from lakeshift.config.quality import parse_checks

        return parse_checks([] if v is None else v)

    @model_validator(mode="after")
    def _custom_sql_not_binlog(self) -> TableConfig:
        if self.custom_sql and self.cdc_strategy == "binlog":
            raise ValueError("custom_sql cannot be read from the binlog (a binlog stream carries table rows, not the "
                             "SELECT's); use cdc_strategy hybrid, timestamp_only, id_only or full_sync")
        return self

    @model_validator(mode="after")
    def _history_keys(self) -> TableConfig:
        from lakeshift.config.history import check_history_keys

        check_history_keys(self)
        return self

    @field_validator("zero_dates", mode="before")
    @classmethod
    def _yaml_null(cls, v: Any) -> Any:
        return "null" if v is None else v  # unquoted `zero_dates: null` parses as None


class PipelineProcessing(Model):
    strategy: Literal["sequential", "parallel"] = "sequential"
    # Rows per extract page (one SELECT ... LIMIT), streamed in Arrow batches of at most 16,384 rows:
    # large pages cost no memory and few queries (see docs/benchmarks.md).
    batch_size: int = Field(1_000_000, ge=1, le=10_000_000)
    max_parallel_tables: int = Field(3, ge=1, le=64)


class LakeSettings(Model):
    storage: str = "default"
    isolation_prefix: str | None = Field(None, description="default: the pipeline name; '' = v1.0 layout")
    partition_strategy: Literal["datetime", "hybrid"] = "hybrid"
    compression: Literal["snappy", "zstd", "gzip", "none"] = "snappy"
    # Parts are loaded into the target while the next one is extracted, so the last
    # part's load is the only one not overlapped: keep parts moderate (docs/benchmarks.md).
    max_file_rows: int = Field(250_000, ge=1)
    row_group_rows: int = Field(64 * 1024, ge=1)  # the writer buffers one row group: memory

    @field_validator("isolation_prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip("/")
        for part in v.split("/") if v else []:
            if part in ("", ".", "..") or not re.fullmatch(r"[A-Za-z0-9_.=-]+", part):
                raise ValueError(f"isolation_prefix {v!r} may use letters, digits, '_', '-', '.', '=' and '/'")
        return v


class BinlogSettings(Model):
    """How a pipeline's binlog tables read the binary log (cdc_strategy: binlog)."""

    server_id: int | None = Field(
        None, ge=1, le=2**32 - 1,
        description="the replica id lakeshift registers with; default: a stable number derived from the pipeline "
                    "name. Two pipelines (or a real replica) must never share one")
    on_position_lost: Literal["fail", "resnapshot"] = Field(
        "fail", description="the saved position is gone (binlog purged, server replaced): stop with the fix "
                            "(fail) or take a new snapshot that replaces the target table (resnapshot)")


def default_server_id(pipeline_name: str) -> int:
    """A stable replica id from the pipeline name, in 1_000_000..2**31-1: far from the
    small ids people give their servers and replicas."""
    import zlib

    return 1_000_000 + zlib.crc32(pipeline_name.encode("utf-8")) % (2**31 - 1_000_001)


class PipelineSection(Model):
    name: str | None = None
    version: str = "1.1.0"
    description: str = ""
    source: str = "default"
    target: str = "default"
    processing: PipelineProcessing = Field(default_factory=PipelineProcessing)
    s3: LakeSettings = Field(default_factory=LakeSettings)
    binlog: BinlogSettings = Field(default_factory=BinlogSettings)
    default_table_config: dict[str, Any] = Field(default_factory=dict)
    # _lakeshift_runs rows of this pipeline older than this are deleted by each run (`lakeshift history`).
    run_history_days: int = Field(90, ge=1, le=36500)


class PipelineConfig(Model):
    """One pipelines/*.yml file after merging table overrides and defaults."""

    key: str  # file stem: the name users type after -p
    pipeline: PipelineSection
    tables: dict[str, TableConfig] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.pipeline.name or self.key

    @property
    def binlog_server_id(self) -> int:
        return self.pipeline.binlog.server_id or default_server_id(self.name)

    @property
    def isolation_prefix(self) -> str:
        prefix = self.pipeline.s3.isolation_prefix
        return self.key if prefix is None else prefix

__all__ = [
    "BinlogSettings",
    "CDC_STRATEGIES",
    "CdcStrategy",
    "ConnectionSettings",
    "DuckDBTarget",
    "Duration",
    "Freshness",
    "FreshnessAge",
    "Identifier",
    "LakeSettings",
    "LocalStorage",
    "Model",
    "MySQLSource",
    "PipelineConfig",
    "PipelineProcessing",
    "PipelineSection",
    "PoolSettings",
    "PostgresTarget",
    "RedshiftTarget",
    "S3Storage",
    "SSHTunnel",
    "Storage",
    "TLSSettings",
    "TableConfig",
    "TableName",
    "TableProcessing",
    "Target",
    "ValidationRules",
    "default_server_id",
    "parse_duration",
]
