"""What is checked before a batch is staged (its names and mode fit the
target) and before it is committed (the staged parts are exactly the
manifest's). Pure: nothing here talks to a database."""

from __future__ import annotations

from collections.abc import Sequence

from lakeshift.batch import Manifest
from lakeshift.errors import LoadError
from lakeshift.identifiers import check_identifier
from lakeshift.load import sql
from lakeshift.load.contracts import Part
from lakeshift.load.dialects import TypeDialect
from lakeshift.load.strategies import MODES


def check_batch(dialect: TypeDialect, schema: str, manifest: Manifest, target_table: str) -> None:
    """The target table, its schema and the batch's columns are names the target takes;
    the mode is one lakeshift loads, with the key it needs."""
    check_identifier(target_table, "target table")
    dialect.check_name(target_table, "target table")
    dialect.check_name(schema, "target schema")
    if dialect.fold(target_table).startswith(sql.RESERVED_TABLE_PREFIX):
        raise LoadError(f"{manifest.table}: target table {target_table!r} starts with "
                        f"{sql.RESERVED_TABLE_PREFIX!r}, which lakeshift reserves for its own tables; set "
                        "target_name to another name")
    names = [c.name for c in manifest.columns]
    if not names:
        raise LoadError(f"batch {manifest.batch_id} of {manifest.table} has no columns")
    for c in manifest.columns:
        check_identifier(c.name, "column")
        dialect.check_name(c.name, f"column of {target_table}")
        if c.name in sql.RESERVED_COLUMNS:
            raise LoadError(f"{manifest.table}: source column {c.name!r} collides with lakeshift's own column; rename it")
    folded = [dialect.fold(n) for n in names]
    if len(set(folded)) != len(folded):
        raise LoadError(f"{manifest.table}: column names that differ only by case cannot coexist in {dialect.name}")
    if manifest.mode not in MODES:
        raise LoadError(f"batch {manifest.batch_id}: unknown mode {manifest.mode!r}")
    if manifest.mode in ("merge", "delete", "changes") and not manifest.primary_key:
        raise LoadError(f"batch {manifest.batch_id} of {manifest.table}: mode {manifest.mode} needs a primary key")
    for k in manifest.primary_key:
        if k not in names:
            raise LoadError(f"batch {manifest.batch_id} of {manifest.table}: merge key column {k!r} is not in the batch")


def check_manifest(head: Manifest, manifest: Manifest, parts: Sequence[Part]) -> None:
    """The batch committed is the one staging was begun for, its staged parts are
    exactly its files, and its merge key has no NULLs."""
    if manifest.batch_id != head.batch_id or [c.name for c in manifest.columns] != [c.name for c in head.columns]:
        raise LoadError(f"commit of batch {manifest.batch_id} on a staging begun for batch {head.batch_id} "
                        "with other columns")
    got = sorted((p.file.path, p.file.rows) for p in parts)
    want = sorted((f.path, f.rows) for f in manifest.files)
    if got != want:
        raise LoadError(
            f"batch {manifest.batch_id} of {manifest.table}: the staged parts ({len(got)}) are not the "
            f"manifest's files ({len(want)}); not loading a partial batch")
    if sum(f.rows for f in manifest.files) != manifest.rows:
        raise LoadError(f"batch {manifest.batch_id}: the files hold {sum(f.rows for f in manifest.files)} rows "
                        f"but the manifest says {manifest.rows}")
    for k in manifest.primary_key:
        # a binlog changes batch's NULL keys are its TRUNCATEs (the reader refuses a change without a key)
        if manifest.null_counts.get(k, 0) and manifest.mode != "changes":
            raise LoadError(f"batch {manifest.batch_id} of {manifest.table}: merge key column {k!r} has "
                            f"{manifest.null_counts[k]} NULL value(s); rows without a key cannot be merged")
