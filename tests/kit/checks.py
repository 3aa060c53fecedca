"""The comparisons end-to-end tests end with: the target mirrors the source,
and every batch of the lake is recorded as loaded exactly once."""

from __future__ import annotations

from typing import Any

from kit.lake import manifest_ids
from kit.source import ITEMS, source_rows
from kit.targets import Target


def assert_mirrors(target: Target, mysql_db: str, table: str = "items", source_table: str | None = None,
                   columns: list[str] = ITEMS, key: str = "id") -> int:
    """Target == source row by row (every column), no key twice. Returns the row count."""
    src = source_rows(mysql_db, source_table or table, columns, key)
    got = target.rows(table, columns, f'"{key}"')
    keys = [r[columns.index(key)] for r in got]
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} duplicate key(s) in {target.schema}.{table}"
    if got != src:
        missing = [r for r in src if r not in got][:5]
        extra = [r for r in got if r not in src][:5]
        raise AssertionError(f"{target.kind} {target.schema}.{table}: {len(got)} rows, source {len(src)}; "
                             f"missing {missing}, unexpected {extra}")
    return len(src)


def assert_loaded_once(target: Target, storage: dict[str, Any], pipeline: str = "p1", table: str = "items",
                       snapshots: bool = False) -> None:
    """Every batch in the lake is recorded as loaded exactly once, and nothing
    else is. `snapshots` (full_sync): an older snapshot left unloaded by a failed
    run is superseded by a newer one; the newest is loaded."""
    loads = [b for b, _ in target.loads(pipeline, table)]
    assert len(loads) == len(set(loads)), loads
    manifests = manifest_ids(storage, pipeline, table)
    if snapshots:
        assert set(loads) <= set(manifests) and manifests and manifests[-1] in loads, (loads, manifests)
    else:
        assert sorted(loads) == manifests
