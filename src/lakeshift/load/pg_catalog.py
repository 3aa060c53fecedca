"""PostgreSQL catalogue facts about a target table, for the move planner
(strategies/facts.py): read in the batch's transaction, after the table got
its new shape and staging its rows. Only what the batch's mode can use is read."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lakeshift.load.session import Session
from lakeshift.load.sql import DELETED_AT_COLUMN
from lakeshift.load.strategies import CatalogFacts, MoveJob, SwapFacts, TableFacts

_RELATION = ("SELECT c.relkind, c.relhastriggers, c.relhasrules, GREATEST(c.reltuples, 0)::bigint, "
             "pg_catalog.pg_relation_size(c.oid) FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(%s)")
# unique indexes ON CONFLICT can use as arbiter: immediate, valid, not partial, no expressions
_ARBITERS = ("SELECT array_agg(a.attname::text) FROM pg_catalog.pg_index i "
             "CROSS JOIN LATERAL unnest(i.indkey) AS k(attnum) "
             "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
             "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indimmediate AND i.indisvalid "
             "AND i.indpred IS NULL AND i.indexprs IS NULL GROUP BY i.indexrelid")
_SETTABLE = ("SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(%s) "
             "AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum")
# the target (t) against the new table (n, staging)
_PAIR = ("SELECT t.relowner = n.relowner, t.relacl IS NOT DISTINCT FROM n.relacl, t.reloptions IS NOT NULL, "
         "t.reltablespace = n.reltablespace, t.relrowsecurity, t.relispartition, t.relreplident "
         "FROM pg_catalog.pg_class t, pg_catalog.pg_class n WHERE t.oid = to_regclass(%s) AND n.oid = to_regclass(%s)")
_ATTRIBUTES = ("SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef, "
               "a.attidentity, a.attgenerated, a.attcollation, a.attacl IS NULL, a.attoptions IS NULL, "
               "a.attstattarget FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(%s) "
               "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum")
_PRIMARY_KEY = ("SELECT array_agg(a.attname::text ORDER BY k.i) FROM pg_catalog.pg_constraint c "
                "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, i) "
                "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
                "WHERE c.conrelid = to_regclass(%s) AND c.contype = 'p'")
_DEPENDENTS = ("SELECT count(*) FROM pg_catalog.pg_depend d WHERE d.refclassid = 'pg_catalog.pg_class'::regclass "
               "AND d.refobjid = to_regclass(%s) AND d.deptype <> 'i' "  # 'i': its row type and TOAST table
               "AND NOT (d.classid = 'pg_catalog.pg_constraint'::regclass AND d.objid IN "
               "(SELECT oid FROM pg_catalog.pg_constraint WHERE conrelid = d.refobjid AND contype = 'p'))")
_OWN_EXTRAS = ("SELECT (SELECT count(*) FROM pg_catalog.pg_inherits WHERE inhrelid = t.oid OR inhparent = t.oid) "
               "+ (SELECT count(*) FROM pg_catalog.pg_description WHERE classoid = 'pg_catalog.pg_class'::regclass "
               "AND objoid = t.oid) + (SELECT count(*) FROM pg_catalog.pg_index WHERE indrelid = t.oid AND NOT indisprimary) "
               "FROM pg_catalog.pg_class t WHERE t.oid = to_regclass(%s)")
# backend_xmin is shown for every session; backend_type only for those we may inspect
# (NULL for other users' sessions without pg_read_all_stats: count them)
_OLD_SNAPSHOTS = ("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = current_database() "
                  "AND pid <> pg_backend_pid() AND coalesce(backend_type, 'client backend') = 'client backend' "
                  "AND backend_xmin IS NOT NULL AND age(backend_xmin) >= %s")


def read_facts(s: Session, job: MoveJob, known: TableFacts, *, swap_staged: bool,
               staged_xid: int | None) -> TableFacts:
    """`known` with the catalogue facts its mode can use: a merge into an existing
    table (upsert, key lookups), a replace staged in the target's types (swap)."""
    mode = job.manifest.mode
    if not known.staged:
        return known
    if mode == "merge" and known.exists:
        return replace(known, catalog=_merge_facts(s, job.target_sql))
    if mode == "replace" and swap_staged:
        return replace(known, catalog=_swap_facts(s, job, staged_xid))
    return known


def _relation(s: Session, target_sql: str) -> CatalogFacts:
    rows = s.query(_RELATION, (target_sql,))
    if not rows:
        return CatalogFacts(relkind=None)
    kind, triggers, rules, estimate, size = rows[0]
    return CatalogFacts(relkind=kind, triggers=bool(triggers), rules=bool(rules), estimated_rows=int(estimate),
                        size_bytes=int(size))


def _merge_facts(s: Session, target_sql: str) -> CatalogFacts:
    rel = _relation(s, target_sql)
    if rel.relkind is None:
        return rel
    keys = tuple(tuple(sorted(r[0] or ())) for r in s.query(_ARBITERS, (target_sql,)))
    columns = tuple(r[0] for r in s.query(_SETTABLE, (target_sql,)))
    return replace(rel, unique_keys=keys, columns=columns)


def _swap_facts(s: Session, job: MoveJob, staged_xid: int | None) -> CatalogFacts:
    target, stage = job.target_sql, job.stage_sql
    rel = _relation(s, target)
    pair = s.query(_PAIR, (target, stage))
    if rel.relkind is None or not pair:
        return replace(rel, relkind=None, swap=SwapFacts())
    owner, grants, options, space, rls, partition, replident = pair[0]
    key = set(job.manifest.primary_key)

    def attributes(table: str) -> list[tuple[Any, ...]]:  # NOT NULL of the key's columns aside: the swap adds it
        return [r[:2] + ((r[2] and r[0] not in key),) + r[3:] for r in s.query(_ATTRIBUTES, (table,))]

    old, new = attributes(target), attributes(stage)
    if job.manifest.soft_delete:  # SoftSwap adds the column to staging as the target's last: it must be there
        old = old[:-1] if old and old[-1][0] == DELETED_AT_COLUMN else old + [()]
    pk = s.query(_PRIMARY_KEY, (target,))
    swap = SwapFacts(
        same_owner=bool(owner), same_grants=bool(grants), storage_options=bool(options), same_tablespace=bool(space),
        row_security=bool(rls), partition=bool(partition), replica_identity=str(replident),
        same_columns=old == new, primary_key=tuple(pk[0][0] or ()),
        dependents=int(s.query(_DEPENDENTS, (target,))[0][0]), own_extras=int(s.query(_OWN_EXTRAS, (target,))[0][0]),
        staged_xid=staged_xid, old_snapshots=_old_snapshots(s, staged_xid))
    return replace(rel, swap=swap)


def _old_snapshots(s: Session, staged_xid: int | None) -> int:
    """A swap is not MVCC-safe: a transaction whose snapshot is older than the
    staging COPYs sees the swapped-in table EMPTY (like after TRUNCATE), while
    DELETE + INSERT shows it the old rows. Count the other sessions of this
    database holding such a snapshot (backend_xmin at or before the newest
    staging transaction); a snapshot taken later sees the staged rows, which
    were committed before this check."""
    if staged_xid is None:
        return 0
    (now,), = s.query("SELECT txid_current()")
    return int(s.query(_OLD_SNAPSHOTS, (int(now) - staged_xid,))[0][0])
