"""Validation rules checked on the manifest alone, before a batch is loaded
(pure: no I/O; the null counts were measured when the batch was written)."""

from __future__ import annotations

from lakeshift.batch import Manifest
from lakeshift.config.models import TableConfig


def validate_batch(manifest: Manifest, table_cfg: TableConfig) -> list[str]:
    """Problems that keep this batch out of the target (empty list: load it).

    - every `validation.required_columns` entry must be a column of the batch;
    - `validation.max_null_percentage` applies to the required columns, or to
      every column of the batch when no required columns are configured.
      A column with no null count in the manifest is not judged.
    A delete batch holds keys only (never NULL, checked at commit): the rules are about rows."""
    if manifest.deletes:
        return []
    rules = table_cfg.validation
    names = [c.name for c in manifest.columns]
    problems = [
        f"required column {name!r} is missing from the batch (it has: {', '.join(names)})"
        for name in rules.required_columns if name not in names
    ]
    limit = rules.max_null_percentage
    # data_quality_checks' plain null_check judges the same columns on the same limit (and
    # lets a later batch that fixes the rows supersede this one): it takes the rule over.
    if any(getattr(c, "check", None) == "null_check" and not c.columns for c in table_cfg.data_quality_checks):
        limit = None
    if limit is not None and manifest.rows > 0:
        checked = [n for n in rules.required_columns if n in names] if rules.required_columns else names
        for name in checked:
            nulls = manifest.null_counts.get(name)
            if nulls is None:
                continue
            pct = 100.0 * nulls / manifest.rows
            if pct > limit:
                problems.append(f"column {name!r} is {pct:.2f}% NULL ({nulls} of {manifest.rows} rows), "
                                f"above max_null_percentage {limit:g}%")
    return problems
