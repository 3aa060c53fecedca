"""Schema evolution: how the target table must change before a batch goes in
(pure: the batch's columns against the target's, read from information_schema)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lakeshift.batch import Column, Manifest
from lakeshift.errors import SchemaChangeError
from lakeshift.load import scd2_sql, sql
from lakeshift.load.dialects import TypeDialect
from lakeshift.load.types import TType, compare


# lakeshift's own columns in a target table: an append batch's id, a soft delete's time
OWN_COLUMN_TYPES = {sql.BATCH_ID_COLUMN: TType("text", 128), sql.DELETED_AT_COLUMN: TType("timestamptz")}
# scd_type: type_2 (load/scd2_sql.py): a version's validity (UTC), flags and tracked-columns hash
HISTORY_COLUMN_TYPES = {scd2_sql.VALID_FROM: TType("timestamp"), scd2_sql.VALID_TO: TType("timestamp"),
                        scd2_sql.IS_CURRENT: TType("bool"), scd2_sql.IS_DELETED: TType("bool"),
                        scd2_sql.ROW_HASH: TType("text", 32)}


@dataclass
class TablePlan:
    """How the target table must change before this batch goes in."""

    exists: bool
    create: str | None = None
    before_transaction: list[str] = field(default_factory=list)  # Redshift: ALTER COLUMN TYPE
    in_transaction: list[str] = field(default_factory=list)
    types: dict[str, TType] = field(default_factory=dict)  # column -> type the target holds after the plan
    recreate: str = ""  # a replace batch the table's types cannot take: why it is dropped and created again


def plan_table(dialect: TypeDialect, schema: str, table: str, manifest: Manifest,
               existing: list[tuple[Any, ...]], *, primary_key: bool) -> TablePlan:
    """Compare the batch's columns with the target's (from information_schema).
    New columns are added, safe widenings applied, anything else refused with
    the way out -- except for a replace batch (full_sync), which replaces every
    row anyway: the table is then recreated with the new types. Columns only in
    the target are left alone (NULL for new rows)."""
    wanted = [(c, dialect.target_type(c)) for c in manifest.columns]
    append = manifest.mode == "append" and manifest.history is None  # a history has no batch id column
    if not existing:
        if manifest.deletes:  # no table, no row to delete: nothing is made for a batch of keys
            return TablePlan(False, types=dict(wanted))
        return _create_plan(dialect, schema, table, manifest, wanted, primary_key)
    have = {dialect.fold(r[0]): dialect.parse(r[1], r[2], r[3], r[4]) for r in existing}
    if manifest.history is not None and dialect.fold(scd2_sql.IS_CURRENT) not in have:
        raise SchemaChangeError(
            f"{dialect.name} table {schema}.{table} holds no history (scd_type: type_2 was set after it was "
            f"made); batch {manifest.batch_id} was not loaded. Way out: set target_name to a new table, or drop "
            f"{schema}.{table} and run `lakeshift watermark reset -p {manifest.pipeline} -t {manifest.table}`")
    plan = TablePlan(True)
    incompatible = []
    for col, new in wanted:
        old = have.get(dialect.fold(col.name))
        if old is not None:
            old = dialect.known(old, new)
        if old is None:
            plan.in_transaction.append(sql.add_column(schema, table, col.name, dialect.render(new)))
            plan.types[col.name] = new
            continue
        change = compare(old, new)
        if change == "same":
            plan.types[col.name] = old
        elif change == "widen" and dialect.can_widen(old, new):
            stmt = sql.alter_column_type(schema, table, col.name, dialect.render(new))
            (plan.in_transaction if dialect.widen_in_transaction else plan.before_transaction).append(stmt)
            plan.types[col.name] = new
        elif manifest.mode == "replace" and manifest.history is None:  # never drop a history
            incompatible.append(f"column {col.name!r} {dialect.render(old)} -> {dialect.render(new)}")
        else:
            raise schema_change_error(dialect, schema, table, col.name, dialect.render(old), dialect.render(new),
                                      col.mysql_type, change, manifest)
    if incompatible:
        recreated = _create_plan(dialect, schema, table, manifest, wanted, primary_key)
        recreated.recreate = ", ".join(incompatible)
        return recreated
    for own, wanted_here in ((sql.BATCH_ID_COLUMN, append), (sql.DELETED_AT_COLUMN, manifest.soft_delete)):
        if wanted_here and dialect.fold(own) not in have:
            plan.in_transaction.append(sql.add_column(schema, table, own, dialect.render(OWN_COLUMN_TYPES[own])))
    return plan


def _create_plan(dialect: TypeDialect, schema: str, table: str, manifest: Manifest,
                 wanted: list[tuple[Column, TType]], primary_key: bool) -> TablePlan:
    cols = [(c.name, dialect.render(t)) for c, t in wanted]
    if manifest.mode == "append" and manifest.history is None:
        cols.append((sql.BATCH_ID_COLUMN, dialect.render(OWN_COLUMN_TYPES[sql.BATCH_ID_COLUMN])))
    if manifest.soft_delete:
        cols.append((sql.DELETED_AT_COLUMN, dialect.render(OWN_COLUMN_TYPES[sql.DELETED_AT_COLUMN])))
    if manifest.history is not None:  # versions repeat the key: no primary key
        cols.extend((n, dialect.render(t)) for n, t in HISTORY_COLUMN_TYPES.items())
    key = manifest.primary_key if primary_key and manifest.mode != "append" and manifest.history is None else ()
    return TablePlan(False, sql.create_table(schema, table, cols, key), types={c.name: t for c, t in wanted})


def schema_change_error(dialect: TypeDialect, schema: str, table: str, column: str, old: str, new: str,
                        mysql_type: str, change: str, manifest: Manifest) -> SchemaChangeError:
    why = ("a widening Redshift cannot apply in place (it can only widen VARCHAR)" if change == "widen"
           else "not a safe widening")
    return SchemaChangeError(
        f"{dialect.name} table {schema}.{table}: column {column!r} is {old} but the source now needs {new} "
        f"(MySQL {mysql_type}, batch {manifest.batch_id}); {why}, so the batch was not loaded. "
        + (f"Way out: drop the target table {schema}.{table} and sync again: the full_sync rebuilds it"
           if manifest.strategy == "full_sync" else
           f"Way out: drop the target table {schema}.{table}, run `lakeshift watermark reset -p {manifest.pipeline} "
           f"-t {manifest.table}` so the next run re-reads every row like a full_sync, and sync again")
        + " (or change the column in the target yourself and run again)."
    )


def widen_refused(dialect: TypeDialect, schema: str, table: str, batch_id: str, exc: Exception) -> SchemaChangeError:
    """A widening the target refused (e.g. PostgreSQL: a view uses the column), with the way out."""
    return SchemaChangeError(
        f"{dialect.name} table {schema}.{table}: could not widen a column for batch {batch_id} ({exc}). Way out: "
        "drop or change what depends on the column (e.g. a view), let the load widen it, then recreate it.")
