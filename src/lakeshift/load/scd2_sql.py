"""SQL text of SCD type 2 history (scd_type: type_2). Pure functions: names in,
statements out; the same text on PostgreSQL, Redshift and DuckDB (window
functions with explicit frames, UPDATE ... FROM, INSERT ... SELECT; no MERGE,
no QUALIFY, no WINDOW clause, no IS NOT DISTINCT FROM).

A batch becomes versions in four steps (load/strategies/history.py runs them):

1. `changes`: a work table of the batch's rows as candidate versions: the row,
   its hash over the tracked columns, whether it is a delete, its time and its
   place in the batch (b = 0); tombstone rows for keys the source lost (b = 0,
   deleted); then the current version of every key they touch (b = 1).
2. `versions`: per business key, in one sort order (the current version first,
   then time and the batch's own order), a row opens a version when its deleted
   flag or (live) its hash differs from the row before; rows that open none
   update the version open at that point (type 1). One row per version: the
   last row of each run, valid from the first row's time (never before the
   version it closes), valid to the next version's start.
3. UPDATE ... FROM: the current version of each touched key is closed when the
   batch opened a version after it; a second UPDATE, only when the batch has
   any, writes in-place changes (of every column: the costly one).
4. INSERT ... SELECT of the new versions.

NULLs in the business key compare equal (PARTITION BY groups them; joins compare
a nullable column through a stand-in value and its NULL flag, see key_match),
composite keys column by column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lakeshift.identifiers import quote_ansi

VALID_FROM = "_lakeshift_valid_from"
VALID_TO = "_lakeshift_valid_to"
IS_CURRENT = "_lakeshift_is_current"
IS_DELETED = "_lakeshift_is_deleted"
ROW_HASH = "_lakeshift_row_hash"
HISTORY_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT, IS_DELETED, ROW_HASH)

# the work tables' own columns (never a source column: lakeshift's prefix is reserved)
HASH, DELETED, TIME, ORDER, BASE = "_lakeshift_h", "_lakeshift_d", "_lakeshift_t", "_lakeshift_o", "_lakeshift_b"
GROUP, FROM_, TO = "_lakeshift_g", "_lakeshift_vf", "_lakeshift_vt"
_EFFECTIVE = "_lakeshift_e"
T_ALIAS, C_ALIAS, S_ALIAS = '"_lakeshift_t"', '"_lakeshift_c"', '"_lakeshift_s"'


@dataclass(frozen=True)
class Shape:
    """What the statements need to know about one history table and its batch."""

    target_sql: str
    changes_sql: str  # the work tables (TEMP)
    versions_sql: str
    columns: Sequence[str]  # the data columns written (the batch's; the target's for a delete batch)
    key: Sequence[str]  # business key
    nullable_key: Mapping[str, str]  # key columns that may be NULL -> a value of their type ('' : none)
    by_time: bool = True  # order a key's rows by time, then the batch's order (binlog: log order only)

    def q(self, names: Sequence[str], alias: str = "") -> str:
        return ", ".join((f"{alias}." if alias else "") + quote_ansi(n) for n in names)


def key_match(shape: Shape, left: str, right: str, key: Sequence[str] | None = None) -> str:
    """The business key (or `key`) of `left` equals that of `right`, NULLs equal. A nullable
    column compares COALESCE(a, v) and whether it is NULL: plain equalities, so every engine
    can still hash-join (an `a = b OR (a IS NULL AND b IS NULL)` cannot, and is only the
    fallback for a type without a value to stand in, `v` '')."""
    parts = []
    for k in key if key is not None else shape.key:
        a, b = f"{left}.{quote_ansi(k)}", f"{right}.{quote_ansi(k)}"
        stand_in = shape.nullable_key.get(k)
        if stand_in is None:
            parts.append(f"{a} = {b}")
        elif stand_in:
            parts.append(f"COALESCE({a}, {stand_in}) = COALESCE({b}, {stand_in}) AND "
                         f"CASE WHEN {a} IS NULL THEN 1 ELSE 0 END = CASE WHEN {b} IS NULL THEN 1 ELSE 0 END")
        else:
            parts.append(f"({a} = {b} OR ({a} IS NULL AND {b} IS NULL))")
    return " AND ".join(parts)


def hash_expr(texts: Sequence[str]) -> str:
    """MD5 over the tracked columns' texts, each length-prefixed ('~' for NULL), so
    ('a,', 'b') and ('a', ',b') differ and NULL differs from ''."""
    pieces = [f"COALESCE(CAST(LENGTH({t}) AS VARCHAR(12)) || ':' || {t}, '~')" for t in texts]
    return f"MD5({' || '.join(pieces) if pieces else repr('')})"


def create_changes(shape: Shape, typed: Sequence[tuple[str, str]]) -> str:
    """The work table: the data columns in the target's types, and the version columns."""
    cols = ", ".join(f"{quote_ansi(n)} {t}" for n, t in typed)
    return (f"CREATE TEMP TABLE {shape.changes_sql} ({cols}, {quote_ansi(HASH)} VARCHAR(32), "
            f"{quote_ansi(DELETED)} BOOLEAN, {quote_ansi(TIME)} TIMESTAMP, {quote_ansi(ORDER)} BIGINT, "
            f"{quote_ansi(BASE)} INTEGER)")


def _into_changes(shape: Shape) -> str:
    return (f"INSERT INTO {shape.changes_sql} ({shape.q(shape.columns)}, {quote_ansi(HASH)}, {quote_ansi(DELETED)}, "
            f"{quote_ansi(TIME)}, {quote_ansi(ORDER)}, {quote_ansi(BASE)}) ")


def staged_changes(shape: Shape, stage_sql: str, exprs: Sequence[str], row_hash: str, deleted: str, time: str,
                   order: str) -> str:
    """The batch's rows as candidate versions (`exprs` etc. refer to "_lakeshift_s")."""
    return (_into_changes(shape) + f"SELECT {', '.join(exprs)}, {row_hash}, {deleted}, {time}, {order}, 0 "
            f"FROM {stage_sql} AS {S_ALIAS}")


def tombstones(shape: Shape, time: str, stage_sql: str | None, *, absent: bool,
               batch_key: Sequence[str] = ()) -> str:
    """Deleted rows for the live current versions the source lost: those whose key the
    snapshot lacks (`absent`; `stage_sql` None: an empty snapshot, every key), or
    those a delete batch names (matched on the batch's key, `batch_key`)."""
    head = (_into_changes(shape) + f"SELECT {shape.q(shape.columns, T_ALIAS)}, {T_ALIAS}.{quote_ansi(ROW_HASH)}, "
            f"TRUE, {time}, 0, 0 FROM {shape.target_sql} AS {T_ALIAS} "
            f"WHERE {T_ALIAS}.{quote_ansi(IS_CURRENT)} AND NOT {T_ALIAS}.{quote_ansi(IS_DELETED)}")
    if stage_sql is None:
        return head
    match = key_match(shape, T_ALIAS, S_ALIAS, batch_key if not absent else None)
    return head + f" AND {'NOT ' if absent else ''}EXISTS (SELECT 1 FROM {stage_sql} AS {S_ALIAS} WHERE {match})"


def base_rows(shape: Shape) -> str:
    """The current version of every key the candidates touch: what they are compared with."""
    return (_into_changes(shape) + f"SELECT {shape.q(shape.columns, T_ALIAS)}, {T_ALIAS}.{quote_ansi(ROW_HASH)}, "
            f"{T_ALIAS}.{quote_ansi(IS_DELETED)}, {T_ALIAS}.{quote_ansi(VALID_FROM)}, 0, 1 "
            f"FROM {shape.target_sql} AS {T_ALIAS} WHERE {T_ALIAS}.{quote_ansi(IS_CURRENT)} AND EXISTS "
            f"(SELECT 1 FROM {shape.changes_sql} AS {C_ALIAS} WHERE {C_ALIAS}.{quote_ansi(BASE)} = 0 "
            f"AND {key_match(shape, T_ALIAS, C_ALIAS)})")


def _order(shape: Shape) -> str:
    """A key's rows in order: its current version first, then time and the batch's order."""
    cols = [TIME, ORDER] if shape.by_time else [ORDER]
    return ", ".join([f"{quote_ansi(BASE)} DESC"] + [quote_ansi(c) for c in cols])


def create_versions(shape: Shape) -> str:
    """One row per version (and per key's group 0: the version current before the batch): the
    last row of each run, its validity, its group. One sort order for every window; nested
    SELECTs because Redshift nests no window functions."""
    part, order = shape.q(shape.key), _order(shape)
    over = f"OVER (PARTITION BY {part} ORDER BY {order})"
    running = f"OVER (PARTITION BY {part} ORDER BY {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    h, d, b, t = quote_ansi(HASH), quote_ansi(DELETED), quote_ansi(BASE), quote_ansi(TIME)
    ph, pd, nh, nd, nt, nb = (quote_ansi(f"_lakeshift_{x}") for x in ("ph", "pd", "nh", "nd", "nt", "nb"))
    e, op, g = quote_ansi(_EFFECTIVE), quote_ansi("_lakeshift_op1"), quote_ansi(GROUP)
    level1 = (f"SELECT *, LAG({h}) {over} AS {ph}, LAG({d}) {over} AS {pd}, LEAD({h}) {over} AS {nh}, "
              f"LEAD({d}) {over} AS {nd}, LEAD({t}) {over} AS {nt}, LEAD({b}) {over} AS {nb}, "
              f"MAX({t}) {running} AS {e} FROM {shape.changes_sql}")
    # a row opens a version: not the current version itself, and deleted or (live) hashed unlike the row before
    opens = (f"CASE WHEN {b} = 1 THEN 0 WHEN {pd} IS NULL THEN (CASE WHEN {d} THEN 0 ELSE 1 END) "
             f"WHEN {d} <> {pd} THEN 1 WHEN NOT {d} AND {h} <> {ph} THEN 1 ELSE 0 END")
    level2 = f"SELECT *, {opens} AS {op} FROM ({level1}) AS l1"
    # a version starts at the latest time up to its first row (never before the one it closes)
    level3 = (f"SELECT *, SUM({op}) {running} AS {g}, MAX(CASE WHEN {op} = 1 OR {b} = 1 THEN {e} END) {running} "
              f"AS {quote_ansi(FROM_)} FROM ({level2}) AS l2")
    keep = shape.q([*shape.columns, HASH, DELETED, BASE, GROUP, FROM_])
    last = f"{nb} IS NULL OR {nd} <> {d} OR (NOT {nd} AND {nh} <> {h})"  # the next row opens a version
    return (f"CREATE TEMP TABLE {shape.versions_sql} AS SELECT {keep}, CASE WHEN {nb} IS NULL THEN NULL "
            f"ELSE GREATEST({e}, {nt}) END AS {quote_ansi(TO)} FROM ({level3}) AS l3 WHERE {last}")


def count_versions(shape: Shape) -> str:
    """The deleted versions the batch opens (what the max_delete_fraction guard weighs), and the
    current versions it changes in place (an UPDATE of every column only when there are any)."""
    g, d, b = quote_ansi(GROUP), quote_ansi(DELETED), quote_ansi(BASE)
    return (f"SELECT SUM(CASE WHEN {g} >= 1 AND {d} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {g} = 0 AND {b} = 0 THEN 1 ELSE 0 END) FROM {shape.versions_sql}")


def count_live(target_sql: str) -> str:
    return (f"SELECT COUNT(*) FROM {target_sql} WHERE {quote_ansi(IS_CURRENT)} AND NOT {quote_ansi(IS_DELETED)}")


def update_current(shape: Shape, *, in_place: bool) -> str:
    """The current version of each touched key. `in_place` False: closed (valid_to, not
    current), because the batch opened a version after it. True: the keys whose last rows
    before that opened none: their (type 1) changes, and closed too when a version follows."""
    v, t = quote_ansi("_lakeshift_v"), shape.target_sql
    close = [f"{quote_ansi(VALID_TO)} = {v}.{quote_ansi(TO)}", f"{quote_ansi(IS_CURRENT)} = {v}.{quote_ansi(TO)} IS NULL"]
    sets = [f"{quote_ansi(c)} = {v}.{quote_ansi(c)}" for c in shape.columns if c not in shape.key] if in_place else []
    which = f"{v}.{quote_ansi(BASE)} = 0" if in_place else f"{v}.{quote_ansi(BASE)} = 1 AND {v}.{quote_ansi(TO)} IS NOT NULL"
    return (f"UPDATE {t} SET {', '.join(sets + close)} FROM {shape.versions_sql} AS {v} "
            f"WHERE {key_match(shape, t, v)} AND {t}.{quote_ansi(IS_CURRENT)} AND {v}.{quote_ansi(GROUP)} = 0 "
            f"AND {which}")


def insert_versions(shape: Shape) -> str:
    v = quote_ansi("_lakeshift_v")
    return (f"INSERT INTO {shape.target_sql} ({shape.q([*shape.columns, *HISTORY_COLUMNS])}) "
            f"SELECT {shape.q(shape.columns, v)}, {v}.{quote_ansi(FROM_)}, {v}.{quote_ansi(TO)}, "
            f"{v}.{quote_ansi(TO)} IS NULL, {v}.{quote_ansi(DELETED)}, {v}.{quote_ansi(HASH)} "
            f"FROM {shape.versions_sql} AS {v} WHERE {v}.{quote_ansi(GROUP)} >= 1")


def current_index(schema_table_sql: str, index_name: str, key: Sequence[str]) -> str:
    """PostgreSQL: the current versions found by key (a partial index; the others have none)."""
    return (f"CREATE INDEX IF NOT EXISTS {quote_ansi(index_name)} ON {schema_table_sql} "
            f"({', '.join(quote_ansi(k) for k in key)}) WHERE {quote_ansi(IS_CURRENT)}")
