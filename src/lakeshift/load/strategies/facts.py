"""What the planner knows about the target table when it picks a strategy, and
the pure judgements made from it. `TableFacts` is filled in by the commit
(every target) and, for PostgreSQL, by load/pg_catalog.py from its catalogue;
other targets leave `catalog` None and get the generic strategies."""

from __future__ import annotations

from dataclasses import dataclass

KEY_LOOKUP_RATIO = 20  # a merge probes the target's key when the target has 20x the batch's rows
ROW_BYTES = 200  # size on disk / ROW_BYTES: the row count to go by while reltuples lags behind


@dataclass(frozen=True)
class SwapFacts:
    """How the target compares with a staging table made in its own types (PostgreSQL,
    a replace batch): a table swap is only made when it loses nothing."""

    same_owner: bool = True
    same_grants: bool = True
    storage_options: bool = False
    same_tablespace: bool = True
    row_security: bool = False
    partition: bool = False
    replica_identity: str = "d"  # 'd': the default (the key)
    same_columns: bool = True  # names, types, defaults, NOT NULL (but the key's), collations, options
    primary_key: tuple[str, ...] = ()
    dependents: int = 0  # views, indexes, constraints ... that depend on the table, besides its key
    own_extras: int = 0  # inheritance, comments, indexes besides the key
    staged_xid: int | None = None  # the newest transaction that COPYed rows into staging
    old_snapshots: int = 0  # other sessions whose snapshot is older than staged_xid


@dataclass(frozen=True)
class CatalogFacts:
    """PostgreSQL's catalogue on the target table."""

    relkind: str | None = "r"  # None: the table is not there
    triggers: bool = False  # foreign keys are triggers too
    rules: bool = False
    unique_keys: tuple[tuple[str, ...], ...] = ()  # sorted columns of each index ON CONFLICT can use
    columns: tuple[str, ...] = ()  # the columns an INSERT can set, in table order
    estimated_rows: int = 0  # reltuples: lags behind, 0 before the first ANALYZE
    size_bytes: int = 0
    swap: SwapFacts | None = None  # only for a replace batch staged in the target's types


@dataclass(frozen=True)
class TableFacts:
    """The target table and its staging, as the move planner sees them."""

    exists: bool  # before this batch (False: the batch creates or recreates it)
    staged: bool = True  # the batch has parts: a staging table holds its rows
    staged_rows: int = 0
    key: tuple[str, ...] = ()  # the batch's merge key
    soft_delete: bool = False  # the batch marks rows deleted instead of removing them (Manifest.soft_delete)
    history: bool = False  # scd_type: type_2: the batch is written as versions (Manifest.history)
    catalog: CatalogFacts | None = None  # PostgreSQL only


def upsert_possible(facts: TableFacts) -> bool:
    """INSERT ... ON CONFLICT (key) DO UPDATE has the same effect as DELETE + INSERT
    only on a plain table with a unique, immediate, non-partial index on exactly
    the merge key and no triggers or rules (they would see an UPDATE)."""
    c = facts.catalog
    if c is None or c.relkind != "r" or c.triggers or c.rules or not facts.key:
        return False
    return tuple(sorted(facts.key)) in c.unique_keys


def prefer_key_lookups(facts: TableFacts) -> bool:
    """A small batch merged into a large table: DELETE ... USING should probe the
    target's key rather than hash the whole table, which the planner picks on
    stale or cautious estimates. reltuples lags behind (0 before the first
    ANALYZE): the size on disk bounds the row count from below."""
    c = facts.catalog
    if c is None or c.relkind is None:
        return False
    rows = max(c.estimated_rows, c.size_bytes // ROW_BYTES)
    return rows >= KEY_LOOKUP_RATIO * max(facts.staged_rows, 1)


def swap_blocker(facts: TableFacts) -> str:
    """Why swapping staging in for the target would lose something ('' = nothing).
    The target must look exactly like a table lakeshift made: the same columns and
    types, its key as the only constraint and index, nothing depending on it, the
    same owner, grants, tablespace and options as the new table; and no snapshot
    older than the staged rows may read it (it would see the new table empty)."""
    c = facts.catalog
    w = c.swap if c is not None else None
    if c is None or w is None or c.relkind is None:
        return "the target table is not there"
    for bad, why in ((c.relkind != "r", "it is not a plain table"), (not w.same_owner, "it has another owner"),
                     (not w.same_grants, "it has grants of its own"), (w.storage_options, "it has storage options"),
                     (not w.same_tablespace, "it is in another tablespace"), (w.row_security, "it has row security"),
                     (w.partition, "it is a partition"), (w.replica_identity != "d", "it has a replica identity"),
                     (c.triggers, "it has triggers or foreign keys"), (c.rules, "it has rules"),
                     (not w.same_columns, "its columns differ from the batch's"),
                     (w.primary_key != facts.key, "another primary key"),
                     (w.dependents > 0, "views, indexes, constraints or other objects depend on it"),
                     (w.own_extras > 0, "inheritance, comments or indexes of its own"),
                     (w.staged_xid is None, "no rows were staged")):
        if bad:
            return why
    if w.old_snapshots:
        return (f"{w.old_snapshots} open transaction(s) began before the new rows were staged and would see "
                "a swapped-in table empty")
    return ""
