"""Typed configuration models. Unknown keys are rejected (see errors.py for
how pydantic errors become one-line messages with file and key path)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from lakeshift.errors import IdentifierError
from lakeshift.identifiers import check_identifier, split_table_name


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=True)


def _identifier(value: Any) -> Any:
    if value is None:
        return value
    try:
        return check_identifier(value, "name")
    except IdentifierError as exc:
        raise ValueError(str(exc)) from None


def _table_name(value: Any) -> Any:
    if value is None:
        return value
    try:
        split_table_name(value)
    except IdentifierError as exc:
        raise ValueError(str(exc)) from None
    return value


Identifier = Annotated[str, BeforeValidator(_identifier)]
TableName = Annotated[str, BeforeValidator(_table_name)]
Port = Annotated[int, Field(ge=1, le=65535)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> timedelta:
    """'10m', '2h', '7d', '30s', '500ms' or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 10m, 2h or 7d")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


# ---------------------------------------------------------------- connections


class PoolSettings(Model):
    min_connections: int = Field(1, ge=0, le=100)
    max_connections: int = Field(5, ge=1, le=100)
    retry_attempts: int = Field(3, ge=0, le=20)

    @model_validator(mode="after")
    def _min_le_max(self) -> PoolSettings:
        if self.min_connections > self.max_connections:
            raise ValueError(
                f"min_connections ({self.min_connections}) is larger than max_connections ({self.max_connections})"
            )
        return self


class SSHTunnel(Model):
    enabled: bool = False
    host: str | None = None
    port: Port = 22
    username: str | None = None
    private_key_path: str | None = None
    private_key_passphrase: SecretStr | None = None
    password: SecretStr | None = None
    known_hosts: str | None = Field(
        None, description="known_hosts file; default ~/.ssh/known_hosts. Unknown host keys are refused."
    )
    host_key: str | None = Field(
        None, description="pinned server public key ('ssh-ed25519 AAAA...'); used instead of known_hosts"
    )
    strict_host_key_checking: bool = True


class TLSSettings(Model):
    mode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


class _Database(Model):
    """Fields shared by networked databases. Values that come from an unset
    variable are None here and listed in `unresolved` (key -> variable)."""

    host: str | None = None
    port: Port
    database: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    ssh_tunnel: SSHTunnel | None = None
    ssl: TLSSettings | None = None
    description: str | None = None
    connect_timeout: int | None = Field(None, ge=1, le=3600)


class MySQLSource(_Database):
    type: Literal["mysql", "mariadb"] = "mysql"
    port: Port = 3306
    connection_pool: PoolSettings = Field(default_factory=PoolSettings)
    statement_timeout: Duration = Field(
        timedelta(hours=1), description="the server stops a read statement after this long; 0 = no limit")
    stall_timeout: Duration | None = Field(
        None, description="the reader gives up when MySQL sends nothing for this long; "
                          "default statement_timeout + 60s (none when statement_timeout is 0); 0 = never")

    @field_validator("statement_timeout", "stall_timeout")
    @classmethod
    def _not_negative(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() < 0:
            raise ValueError("must be 0 or more")
        return value


class PostgresTarget(_Database):
    type: Literal["postgres", "postgresql"]
    port: Port = 5432
    schema_: Identifier = Field("public", alias="schema")
    connection_pool: PoolSettings = Field(default_factory=PoolSettings)

    model_config = ConfigDict(populate_by_name=True)


class RedshiftTarget(PostgresTarget):
    type: Literal["redshift"]  # type: ignore[assignment]
    port: Port = 5439
    iam_role: str | None = Field(None, description="IAM role ARN used by COPY; preferred over keys")


class DuckDBTarget(Model):
    type: Literal["duckdb"]
    path: str = Field(..., description="DuckDB database file")
    schema_: Identifier = Field("main", alias="schema")
    description: str | None = None

    model_config = ConfigDict(populate_by_name=True)


Target = Annotated[Union[PostgresTarget, RedshiftTarget, DuckDBTarget], Field(discriminator="type")]


class S3Storage(Model):
    type: Literal["s3"]
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    server_side_encryption: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: str | None = None
    description: str | None = None

    @field_validator("prefix")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip("/")

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> S3Storage:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key must be given together")
        return self


class LocalStorage(Model):
    type: Literal["local"]
    path: str
    description: str | None = None


Storage = Annotated[Union[S3Storage, LocalStorage], Field(discriminator="type")]


class ConnectionSettings(Model):
    default_timeout: int = Field(30, ge=1, le=3600)
    connection_retry_delay: float = Field(5, ge=0, le=600)
    pool_recycle_time: int = Field(3600, ge=1)
    health_check_interval: int = Field(300, ge=1)


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
