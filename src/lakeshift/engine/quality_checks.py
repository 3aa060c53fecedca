"""The data_quality_checks (config/quality.py) computed on a batch in the lake:
from the manifest's statistics (row count, NULL counts measured when the batch
was written) and one Parquet scan of the columns the other checks need -- never
a second read of MySQL. Pure: the caller hands the scanned columns in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakeshift.batch import Manifest
from lakeshift.config.models import TableConfig
from lakeshift.config.quality import AcceptedValues, DuplicateCheck, Freshness, NullCheck, RowCountMin, describe_check


@dataclass(frozen=True)
class CheckResult:
    check: str  # e.g. "null_check", "accepted_values(status)"
    severity: str  # error | warn
    passed: bool
    column: str | None = None  # the (first) offending column
    offending: int = 0  # offending rows (or keys)
    detail: str = ""

    def line(self) -> str:
        """One phrase for messages, the run history and the summary."""
        if self.passed:
            return f"{self.check} ok"
        where = f" on column {self.column!r}" if self.column else ""
        return f"{self.check} failed{where}: {self.offending:,} offending row(s) ({self.detail})"


def duplicate_key(check: DuplicateCheck, cfg: TableConfig | None, manifest: Manifest) -> list[str]:
    """The columns a duplicate_check judges: its own, the business key (SCD2 tables), the merge key."""
    return list(check.columns or getattr(cfg, "business_key", None) or manifest.primary_key)


def scan_columns(checks: Sequence[Any], manifest: Manifest, cfg: TableConfig | None = None) -> list[str]:
    """The batch columns the checks need from the Parquet scan (the rest use the manifest)."""
    names = {c.name for c in manifest.columns}
    wanted: list[str] = []
    for check in checks:
        if isinstance(check, DuplicateCheck):
            wanted += duplicate_key(check, cfg, manifest)
        elif isinstance(check, AcceptedValues):
            wanted += list(check.values)
        elif isinstance(check, Freshness):
            wanted.append(check.column)
        elif isinstance(check, NullCheck):
            wanted += [c for c in _null_columns(check, None, manifest) if c not in manifest.null_counts]
    return [c for c in dict.fromkeys(wanted) if c in names]


def run_checks(checks: Sequence[Any], cfg: TableConfig, manifest: Manifest, data: pa.Table,
               now: datetime | None = None) -> list[CheckResult]:
    """Each check's result on the batch (`data`: its scanned columns, see scan_columns)."""
    now = now or datetime.now(timezone.utc)
    judges: dict[type, Callable[..., CheckResult]] = {
        NullCheck: _nulls, DuplicateCheck: _duplicates, RowCountMin: _row_count,
        AcceptedValues: _accepted, Freshness: _fresh}
    return [judges[type(c)](c, cfg, manifest, data, now) for c in checks]


def _result(check: Any, column: str | None = None, offending: int = 0, detail: str = "") -> CheckResult:
    return CheckResult(describe_check(check), check.severity, not detail, column, offending, detail)


def _missing(check: Any, manifest: Manifest, column: str) -> CheckResult:
    return _result(check, column, manifest.rows, f"the batch has no column {column!r}")


def _null_columns(check: NullCheck, cfg: TableConfig | None, manifest: Manifest) -> list[str]:
    required = cfg.validation.required_columns if cfg is not None else []
    return list(check.columns or required or [c.name for c in manifest.columns])


def _nulls(check: NullCheck, cfg: TableConfig, manifest: Manifest, data: pa.Table, now: datetime) -> CheckResult:
    limit = check.max_null_percentage
    if limit is None:
        limit = cfg.validation.max_null_percentage or 0.0
    for column in _null_columns(check, cfg, manifest):
        if column in manifest.null_counts:
            nulls = manifest.null_counts[column]
        elif column in data.column_names:
            nulls = data[column].null_count
        else:
            return _missing(check, manifest, column)
        pct = 100.0 * nulls / manifest.rows if manifest.rows else 0.0
        if pct > limit:
            return _result(check, column, nulls, f"{pct:.2f}% NULL of {manifest.rows:,} rows, above {limit:g}%")
    return _result(check)


def _duplicates(check: DuplicateCheck, cfg: TableConfig, manifest: Manifest, data: pa.Table,
                now: datetime) -> CheckResult:
    key = duplicate_key(check, cfg, manifest)
    if manifest.mode == "changes" and not check.columns:
        return _result(check)  # a binlog batch holds every change of a key: the target side judges it
    if not key:
        return _result(check, None, 0, "the table has no key: list the columns, e.g. {duplicate_check: "
                                       "{columns: [id]}}")
    for column in key:
        if column not in data.column_names:
            return _missing(check, manifest, column)
    counts = data.select(key).group_by(key, use_threads=False).aggregate([([], "count_all")])
    extra = data.num_rows - counts.num_rows
    if not extra:
        return _result(check)
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    sample = repeated.slice(0, 1).to_pylist()[0]
    value = ", ".join(f"{k}={sample[k]!r}" for k in key)
    return _result(check, ", ".join(key), extra,
                   f"{repeated.num_rows:,} key value(s) repeat, e.g. {value} {sample['count_all']} times")


def _row_count(check: RowCountMin, cfg: TableConfig, manifest: Manifest, data: pa.Table, now: datetime) -> CheckResult:
    if manifest.rows >= check.min:
        return _result(check)
    return _result(check, None, check.min - manifest.rows, f"{manifest.rows:,} rows, fewer than {check.min:,}")


def _accepted(check: AcceptedValues, cfg: TableConfig, manifest: Manifest, data: pa.Table,
              now: datetime) -> CheckResult:
    for column, allowed in check.values.items():
        if column not in data.column_names:
            return _missing(check, manifest, column)
        values = data[column]
        try:
            value_set = pa.array(allowed).cast(values.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return _result(check, column, 0, f"the accepted values {allowed!r} are not {values.type} values")
        bad = pc.and_(pc.invert(pc.is_in(values, value_set=value_set)), pc.is_valid(values))
        n = pc.sum(bad).as_py() or 0
        if n:
            example = values.filter(bad)[0].as_py()
            return _result(check, column, n, f"e.g. {example!r}, not one of {allowed!r}")
    return _result(check)


def _fresh(check: Freshness, cfg: TableConfig, manifest: Manifest, data: pa.Table, now: datetime) -> CheckResult:
    column = check.column
    if column not in data.column_names:
        return _missing(check, manifest, column)
    values = data[column]
    if not (pa.types.is_timestamp(values.type) or pa.types.is_date(values.type)):
        return _result(check, column, 0, f"the column is {values.type}, not a date or timestamp")
    newest = pc.max(values).as_py()
    if newest is None:
        return _result(check, column, manifest.rows, "no value")
    newest_utc = _as_utc(newest)
    cutoff = now - check.max_age
    if newest_utc >= cutoff:
        return _result(check)
    age = now - newest_utc
    return _result(check, column, manifest.rows - values.null_count,
                   f"newest value {newest} is {_hours(age.total_seconds())} old, above max_age "
                   f"{_hours(check.max_age.total_seconds())}")


def _as_utc(value: datetime | date) -> datetime:
    """Naive DATETIME values are taken as UTC (the lake keeps them as MySQL wrote them)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}h" if seconds >= 3600 else f"{seconds / 60:.1f}m"
