"""Before a table is read: did its source columns change since the batches
already taken? The reference is the newest batch's columns in the lake (so
`--backup-only` runs are compared too); when the lake keeps no batch (all
cleaned by `s3clean`) but the table has a watermark, the target table's
columns. Changes are logged and returned as notes for the run history.

An incremental table that gained a column (or a possible rename) is read from
the start in this run and merged by key like a first load: existing rows get
the new column's values in the same batch transaction, on every target, at
the cost of one full read (see docs/reliability.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lakeshift.batch import Column
from lakeshift.engine.schema_diff import RefColumn, describe, diff_columns

log = logging.getLogger("lakeshift.engine")


@dataclass
class SchemaCheck:
    read_from_start: bool = False
    notes: list[str] = field(default_factory=list)


def check_columns(table: str, strategy: str, columns: list[Column], table_lake: Any, loader: Any,
                  target_table: str, has_watermark: bool) -> SchemaCheck:
    """Compare `columns` (the source's now) with the reference, log each change
    and say whether this run must read the table from the start."""
    incremental = strategy != "full_sync"
    reference = _reference(table_lake, loader if incremental and has_watermark else None, target_table)
    if reference is None:
        log.debug("%s: no earlier batch in the lake and no target table to compare the source's columns with; "
                  "schema changes are not looked for in this run", table)
        return SchemaCheck()
    ref_columns, fold, where = reference
    change = diff_columns(ref_columns, columns, fold)
    reread = incremental and has_watermark and change.new_columns
    if change:
        log.debug("%s: source columns compared with %s", table, where)
    lines = describe(change, reread)
    for level, text in lines:
        log.log(level, "%s: %s", table, text)
    return SchemaCheck(reread, [text for _, text in lines])


def _reference(table_lake: Any, loader: Any, target_table: str) -> tuple[list[RefColumn], Any, str] | None:
    """(columns, name fold, where they came from), or None when nothing tells."""
    manifest = table_lake.newest_manifest()
    if manifest is not None:
        return [RefColumn(c.name, c.mysql_type) for c in manifest.columns], None, f"batch {manifest.batch_id}"
    if loader is None:
        return None
    names = loader.target_columns(target_table)
    if not names:
        return None
    return [RefColumn(n) for n in names], loader.dialect.fold, f"the target table {target_table}"
