"""SQL text for every target. Pure functions: identifiers in, statements out.

The statements for PostgreSQL and Redshift are the same text (DELETE ... USING
+ INSERT ... SELECT with ROW_NUMBER, no MERGE, no QUALIFY, no TRUNCATE), so
the merge and state SQL Redshift runs is exercised for real on PostgreSQL in
the tests. DuckDB accepts the same text with `?` placeholders.

Values always travel as driver parameters (`P` below is replaced by the
dialect's placeholder); identifiers are always quoted by `quote_ansi`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lakeshift.identifiers import qualified_ansi, quote_ansi
from lakeshift.lake_profile import ROW_ORDINAL
from lakeshift.load.state import LOADS_TABLE, LOCKS_TABLE, RUNS_TABLE

BATCH_ID_COLUMN = "_lakeshift_batch_id"
ORDINAL_COLUMN = ROW_ORDINAL  # row order inside a batch: part order, then row order
ROW_NUMBER_COLUMN = "_lakeshift_rn"
# hard_deletes: soft: when the row was found deleted in the source (NULL: a live row)
DELETED_AT_COLUMN = "_lakeshift_deleted_at"
RESERVED_COLUMNS = (BATCH_ID_COLUMN, ORDINAL_COLUMN, ROW_NUMBER_COLUMN, DELETED_AT_COLUMN)
# The staging rows' alias in a merge: a name no target table may have (a target called "s"
# made `DELETE FROM "x"."s" USING stage AS "s"` ambiguous in DuckDB).
RESERVED_TABLE_PREFIX = "_lakeshift_"

LOAD_COLUMNS = ("pipeline", "table_name", "batch_id", "target_table", "mode", "rows", "files", "bytes",
                "watermark_low", "watermark_high", "loaded_at", "note", "deleted")
RUN_COLUMNS = ("pipeline", "table_name", "started_at", "finished_at", "status", "rows_extracted",
               "rows_loaded", "batches", "error", "notes", "rows_deleted", "quality")
# State columns added after the tables were first released: targets made before them get
# them by ALTER TABLE (see state_migrations). (table, column, type)
ADDED_STATE_COLUMNS = ((LOADS_TABLE, "note", "VARCHAR(1024)"), (RUNS_TABLE, "notes", "VARCHAR(4096)"),
                       (LOCKS_TABLE, "holder", "VARCHAR(128)"),
                       (LOADS_TABLE, "deleted", "BIGINT"), (RUNS_TABLE, "rows_deleted", "BIGINT"),
                       (RUNS_TABLE, "quality", "VARCHAR(4096)"))


def _p(placeholder: str, n: int) -> str:
    return ", ".join([placeholder] * n)


def _cols(names: Sequence[str], prefix: str = "") -> str:
    return ", ".join(prefix + quote_ansi(n) for n in names)


# ---------------------------------------------------------------- state tables


def create_schema(schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {quote_ansi(schema)}"


def state_tables(schema: str, *, with_locks: bool = False) -> list[str]:
    """DDL valid on PostgreSQL, Redshift and DuckDB alike."""
    loads = (
        f"CREATE TABLE IF NOT EXISTS {qualified_ansi(schema, LOADS_TABLE)} ("
        '"pipeline" VARCHAR(256) NOT NULL, "table_name" VARCHAR(256) NOT NULL, "batch_id" VARCHAR(128) NOT NULL, '
        '"target_table" VARCHAR(256), "mode" VARCHAR(16), "rows" BIGINT, "files" INTEGER, "bytes" BIGINT, '
        '"watermark_low" VARCHAR(1024), "watermark_high" VARCHAR(1024), "loaded_at" TIMESTAMPTZ, "note" VARCHAR(1024), "deleted" BIGINT, '
        'PRIMARY KEY ("pipeline", "table_name", "batch_id"))'
    )
    runs = (
        f"CREATE TABLE IF NOT EXISTS {qualified_ansi(schema, RUNS_TABLE)} ("
        '"pipeline" VARCHAR(256) NOT NULL, "table_name" VARCHAR(256) NOT NULL, "started_at" TIMESTAMPTZ, '
        '"finished_at" TIMESTAMPTZ, "status" VARCHAR(32), "rows_extracted" BIGINT, "rows_loaded" BIGINT, '
        '"batches" INTEGER, "error" VARCHAR(16000), "notes" VARCHAR(4096), "rows_deleted" BIGINT, '
        '"quality" VARCHAR(4096))'
    )
    out = [loads, runs]
    if with_locks:
        out.append(
            f"CREATE TABLE IF NOT EXISTS {qualified_ansi(schema, LOCKS_TABLE)} ("
            '"pipeline" VARCHAR(256) NOT NULL, "table_name" VARCHAR(256) NOT NULL, "pid" INTEGER NOT NULL, '
            '"acquired_at" TIMESTAMPTZ, "holder" VARCHAR(128))'
        )
    return out


def state_columns(ph: str) -> str:
    """The columns the state tables have (information_schema exists on all three targets)."""
    return ("SELECT table_name, column_name FROM information_schema.columns "
            f"WHERE table_schema = {ph} AND table_name IN ({ph}, {ph}, {ph})")


def state_migrations(schema: str, present: dict[str, set[str]]) -> list[str]:
    """ALTER TABLE ... ADD COLUMN for each added state column a state table lacks.
    `present`: state table -> its column names (lower case). Redshift has no ADD
    COLUMN IF NOT EXISTS: a run racing another one tolerates "already exists"."""
    return [add_column(schema, table, column, type_sql) for table, column, type_sql in ADDED_STATE_COLUMNS
            if table in present and column not in present[table]]


def _select_list(columns: Sequence[str], absent: Sequence[str]) -> str:
    """The columns, with NULL for those a not yet migrated state table lacks."""
    return ", ".join(f"NULL AS {quote_ansi(c)}" if c in absent else quote_ansi(c) for c in columns)


def select_loads(schema: str, ph: str, *, batch: bool = False, absent: Sequence[str] = ()) -> str:
    where = f'"pipeline" = {ph} AND "table_name" = {ph}' + (f' AND "batch_id" = {ph}' if batch else "")
    return (f"SELECT {_select_list(LOAD_COLUMNS, absent)} FROM {qualified_ansi(schema, LOADS_TABLE)} "
            f'WHERE {where} ORDER BY "batch_id"')


def insert_load(schema: str, ph: str) -> str:
    return (f"INSERT INTO {qualified_ansi(schema, LOADS_TABLE)} ({_cols(LOAD_COLUMNS)}) "
            f"VALUES ({_p(ph, len(LOAD_COLUMNS))})")


def insert_run(schema: str, ph: str) -> str:
    return (f"INSERT INTO {qualified_ansi(schema, RUNS_TABLE)} ({_cols(RUN_COLUMNS)}) "
            f"VALUES ({_p(ph, len(RUN_COLUMNS))})")


def select_runs(schema: str, ph: str, limit: int, absent: Sequence[str] = ()) -> str:
    return (f"SELECT {_select_list(RUN_COLUMNS, absent)} FROM {qualified_ansi(schema, RUNS_TABLE)} "
            f'WHERE "pipeline" = {ph} AND "table_name" = {ph} ORDER BY "started_at" DESC LIMIT {int(limit)}')


def select_pipeline_runs(schema: str, ph: str, per_table: int, *, table: bool = False,
                         absent: Sequence[str] = ()) -> str:
    """The newest `per_table` runs of each table of a pipeline (`lakeshift status`), newest first."""
    where = f'"pipeline" = {ph}' + (f' AND "table_name" = {ph}' if table else "")
    return (f"SELECT {_cols(RUN_COLUMNS)} FROM (SELECT {_select_list(RUN_COLUMNS, absent)}, ROW_NUMBER() OVER "
            f'(PARTITION BY "table_name" ORDER BY "started_at" DESC) AS {quote_ansi(ROW_NUMBER_COLUMN)} '
            f"FROM {qualified_ansi(schema, RUNS_TABLE)} WHERE {where}) AS r "
            f'WHERE {quote_ansi(ROW_NUMBER_COLUMN)} <= {int(per_table)} ORDER BY "table_name", "started_at" DESC')


def select_last_success(schema: str, ph: str) -> str:
    """Per table of a pipeline, when its newest successful run finished."""
    return (f'SELECT "table_name", MAX("finished_at") FROM {qualified_ansi(schema, RUNS_TABLE)} '
            f'WHERE "pipeline" = {ph} AND "status" = {ph} GROUP BY "table_name"')


def select_pipeline_loads(schema: str, ph: str, absent: Sequence[str] = ()) -> str:
    return (f"SELECT {_select_list(LOAD_COLUMNS, absent)} FROM {qualified_ansi(schema, LOADS_TABLE)} "
            f'WHERE "pipeline" = {ph} ORDER BY "table_name", "batch_id"')


def prune_runs(schema: str, ph: str) -> str:
    """Run history older than the pipeline's run_history_days."""
    return f'DELETE FROM {qualified_ansi(schema, RUNS_TABLE)} WHERE "pipeline" = {ph} AND "started_at" < {ph}'


def table_columns(ph: str) -> str:
    """Existing columns of one table (information_schema exists on all three targets)."""
    return ("SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
            f"FROM information_schema.columns WHERE table_schema = {ph} AND table_name = {ph} "
            "ORDER BY ordinal_position")


def dependent_views(ph: str) -> str:
    """Views (plain or materialized) built on one table: PostgreSQL and Redshift catalogues."""
    return ("SELECT DISTINCT vn.nspname, v.relname FROM pg_catalog.pg_class t "
            "JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace "
            "JOIN pg_catalog.pg_depend d ON d.refobjid = t.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass "
            "AND d.classid = 'pg_catalog.pg_rewrite'::regclass "
            "JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid "
            "JOIN pg_catalog.pg_class v ON v.oid = r.ev_class "
            "JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace "
            f"WHERE tn.nspname = {ph} AND t.relname = {ph} AND v.oid <> t.oid ORDER BY 1, 2")


# ---------------------------------------------------------------- target DDL


def create_table(schema: str, table: str, columns: Sequence[tuple[str, str]], primary_key: Sequence[str] = (),
                 *, temporary: bool = False, unlogged: bool = False, if_not_exists: bool = False) -> str:
    """Columns are never NOT NULL (a column dropped in MySQL gets NULLs for new
    rows), except the primary key."""
    body = ", ".join(f"{quote_ansi(n)} {t}" for n, t in columns)
    if primary_key:
        body += f", PRIMARY KEY ({_cols(primary_key)})"
    kind = "TEMP TABLE" if temporary else ("UNLOGGED TABLE" if unlogged else "TABLE")
    name = quote_ansi(table) if temporary else qualified_ansi(schema, table)
    return f"CREATE {kind} {'IF NOT EXISTS ' if if_not_exists else ''}{name} ({body})"


def add_column(schema: str, table: str, column: str, type_sql: str) -> str:
    return f"ALTER TABLE {qualified_ansi(schema, table)} ADD COLUMN {quote_ansi(column)} {type_sql}"


def alter_column_type(schema: str, table: str, column: str, type_sql: str) -> str:
    return f"ALTER TABLE {qualified_ansi(schema, table)} ALTER COLUMN {quote_ansi(column)} TYPE {type_sql}"


def drop_table(name_sql: str) -> str:
    return f"DROP TABLE IF EXISTS {name_sql}"


def count_rows(name_sql: str, *, live: bool = False) -> str:
    """Every row, or (`live`) those not marked deleted (hard_deletes: soft)."""
    return f"SELECT COUNT(*) FROM {name_sql}" + (f" WHERE {quote_ansi(DELETED_AT_COLUMN)} IS NULL" if live else "")


# ---------------------------------------------------------------- moving the batch


def _order_by(order: Sequence[str], ordinal: bool, key: Sequence[str]) -> str:
    """Newest first: the cursor columns descending (NULLs last), then the row's
    position in the batch (later wins), else the key itself for determinism."""
    parts = [f"{quote_ansi(c)} DESC NULLS LAST" for c in order]
    if ordinal:
        parts.append(f"{quote_ansi(ORDINAL_COLUMN)} DESC")
    if not parts:
        parts = [quote_ansi(c) for c in key]
    return ", ".join(parts)


def insert_rows(target_sql: str, stage_sql: str, columns: Sequence[str], exprs: Sequence[str],
                key: Sequence[str] = (), order: Sequence[str] = (), *, ordinal: bool = False,
                extra: Sequence[tuple[str, str]] = (), newest_if: str = "") -> str:
    """INSERT INTO target (columns) SELECT exprs FROM staging, keeping only the
    newest row of each key when a key is given. `exprs` refer to "_lakeshift_s"."col";
    `extra` adds (column, expression) pairs such as the batch id; `newest_if` a
    condition the newest row must meet to be inserted (on "_lakeshift_s")."""
    names = list(columns) + [n for n, _ in extra]
    values = list(exprs) + [e for _, e in extra]
    head = f"INSERT INTO {target_sql} ({_cols(names)}) SELECT {', '.join(values)} FROM "
    if not key:
        return head + f'{stage_sql} AS "_lakeshift_s"'
    inner = (f"SELECT {_cols(columns)}, ROW_NUMBER() OVER (PARTITION BY {_cols(key)} "
             f"ORDER BY {_order_by(order, ordinal, key)}) AS {quote_ansi(ROW_NUMBER_COLUMN)} FROM {stage_sql}")
    return (head + f'({inner}) AS "_lakeshift_s" WHERE "_lakeshift_s".{quote_ansi(ROW_NUMBER_COLUMN)} = 1'
            + (f" AND {newest_if}" if newest_if else ""))


def delete_matching(target_sql: str, stage_sql: str, key: Sequence[str]) -> str:
    """Delete the target rows whose key is in the batch. The target is named in
    full (Redshift's DELETE takes no alias for it)."""
    return f'DELETE FROM {target_sql} USING {stage_sql} AS "_lakeshift_s" WHERE {_key_match(target_sql, key)}'


def _key_match(target_sql: str, key: Sequence[str]) -> str:
    return " AND ".join(f'{target_sql}.{quote_ansi(k)} = "_lakeshift_s".{quote_ansi(k)}' for k in key)


def mark_deleted(target_sql: str, stage_sql: str, key: Sequence[str], ph: str) -> str:
    """Soft delete: the live target rows whose key is staged get the time (parameter) in
    _lakeshift_deleted_at; rows already marked keep the time they were first found gone."""
    deleted = quote_ansi(DELETED_AT_COLUMN)
    return (f'UPDATE {target_sql} SET {deleted} = {ph} FROM {stage_sql} AS "_lakeshift_s" '
            f"WHERE {_key_match(target_sql, key)} AND {target_sql}.{deleted} IS NULL")


def mark_absent(target_sql: str, stage_sql: str | None, key: Sequence[str], ph: str) -> str:
    """full_sync with soft deletes: the live target rows whose key the snapshot lacks get the
    time (parameter); `stage_sql` None: an empty snapshot, every live row is gone."""
    deleted = quote_ansi(DELETED_AT_COLUMN)
    head = f"UPDATE {target_sql} SET {deleted} = {ph} WHERE {deleted} IS NULL"
    if stage_sql is None:
        return head
    return f'{head} AND NOT EXISTS (SELECT 1 FROM {stage_sql} AS "_lakeshift_s" WHERE {_key_match(target_sql, key)})'


def delete_all(target_sql: str) -> str:
    """Replace mode: DELETE, never TRUNCATE (TRUNCATE commits implicitly on
    Redshift and takes an ACCESS EXCLUSIVE lock that blocks readers on PostgreSQL)."""
    return f"DELETE FROM {target_sql}"


def live_condition(columns: set[str], fold: Callable[[str], str]) -> str:
    """The live rows of a target table with these (folded) columns: not soft-deleted, or a
    history's current versions; "" when every row is live."""
    from lakeshift.load.scd2_sql import IS_CURRENT

    if fold(IS_CURRENT) in columns:
        return quote_ansi(IS_CURRENT)
    return f"{quote_ansi(DELETED_AT_COLUMN)} IS NULL" if fold(DELETED_AT_COLUMN) in columns else ""


def repeated_keys(table: str, key: Sequence[str], live: str = "") -> str:
    """How many values of `key` more than one (live) row of `table` holds (duplicate_check)."""
    cols = ", ".join(quote_ansi(c) for c in key)
    where = f" WHERE {live}" if live else ""
    return f"SELECT COUNT(*) FROM (SELECT {cols} FROM {table}{where} GROUP BY {cols} HAVING COUNT(*) > 1) AS repeated"
