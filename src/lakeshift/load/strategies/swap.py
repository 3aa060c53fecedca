"""Replace by table swap (PostgreSQL full_sync): staging was made in the
target's own types, so instead of DELETE + INSERT ... SELECT of every row the
primary key is built on staging and, last before COMMIT, the old table is
dropped and staging renamed into its place. Chosen only when that loses nothing
(facts.swap_blocker); a batch that repeats a key, or readers that hold the old
table too long, make it replace row by row after all, in the same transaction.
docs/benchmarks.md (finding 1) has what it saves."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lakeshift.errors import LoadError
from lakeshift.identifiers import quote_ansi
from lakeshift.load import sql
from lakeshift.load.naming import pkey_name
from lakeshift.load.session import Session, sqlstate
from lakeshift.load.strategies.contract import STAGE_ALIAS, Moved, MoveJob, drop_stage
from lakeshift.load.strategies.replace import Replace

log = logging.getLogger("lakeshift.load")

# The key is built with one sort, in memory when it fits (spilling to disk is slower); never lowered.
KEY_BUILD_MEMORY = "128MB"
SWAP_LOCK_TIMEOUT = "2s"  # how long the swap waits for readers of the old table before it falls back
# duplicate key, lock timeout, dependent objects, not the owner: replace row by row instead
_FALLBACK_STATES = frozenset({"23505", "55P03", "2BP01", "42501"})


@dataclass(frozen=True)
class Swap:
    estimated_rows: int = 0  # the old table's rows (reltuples), counted as deleted
    staged_rows: int = 0

    def move(self, s: Session, job: MoveJob) -> Moved:
        if not build_key(s, job):
            return Replace().move(s, job)  # the batch repeats a key: de-duplicate row by row
        return Moved(self.estimated_rows, self.staged_rows, finish=swap_in)


def build_key(s: Session, job: MoveJob) -> bool:
    """The primary key on staging; False (and nothing changed) when the batch repeats a key.
    A batch without a key has none to build (True)."""
    if not job.manifest.primary_key:
        return True
    s.execute("SAVEPOINT _ls_key")
    if _memory_kb(s.query("SHOW maintenance_work_mem")[0][0]) < _memory_kb(KEY_BUILD_MEMORY):
        s.execute(f"SET LOCAL maintenance_work_mem = '{KEY_BUILD_MEMORY}'")
    try:
        s.execute(f"ALTER TABLE {job.stage_sql} ADD CONSTRAINT {quote_ansi(job.stage_name + '_pkey')} "
                  f"PRIMARY KEY ({', '.join(quote_ansi(k) for k in job.manifest.primary_key)})")
    except LoadError as exc:
        if sqlstate(exc) != "23505":
            raise
        s.execute("ROLLBACK TO SAVEPOINT _ls_key")
        return False
    s.execute("RELEASE SAVEPOINT _ls_key")
    return True


def swap_in(s: Session, job: MoveJob) -> None:
    """The swap itself, last before COMMIT so the old table is locked for an instant:
    drop it, rename staging (and its key) to the target's names. If readers hold
    the old table longer than SWAP_LOCK_TIMEOUT, replace row by row instead."""
    s.execute("SAVEPOINT _ls_swap")
    try:
        s.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
        s.execute(sql.drop_table(job.target_sql))
        s.execute(f"ALTER TABLE {job.stage_sql} RENAME TO {quote_ansi(job.target_table)}")
        if job.manifest.primary_key:
            s.execute(f"ALTER TABLE {job.target_sql} RENAME CONSTRAINT {quote_ansi(job.stage_name + '_pkey')} "
                      f"TO {quote_ansi(pkey_name(job.target_table))}")
        s.execute("SET LOCAL lock_timeout TO DEFAULT")
    except LoadError as exc:
        if sqlstate(exc) not in _FALLBACK_STATES:
            raise
        s.execute("ROLLBACK TO SAVEPOINT _ls_swap")
        log.info("%s: could not swap in the new %s (%s); replacing it row by row", job.manifest.table,
                 job.target_sql, exc)
        names = [c.name for c in job.manifest.columns]
        if job.manifest.soft_delete:  # staging also holds the rows the snapshot lacks, marked (soft_replace.py)
            names.append(sql.DELETED_AT_COLUMN)
        s.execute(sql.delete_all(job.target_sql))
        s.execute(sql.insert_rows(job.target_sql, job.stage_sql, names,
                                  [f"{STAGE_ALIAS}.{quote_ansi(n)}" for n in names], job.manifest.primary_key))
        drop_stage(s, job)
        return
    s.execute("RELEASE SAVEPOINT _ls_swap")
    log.debug("%s: swapped staging %s in as %s.%s", job.manifest.table, job.stage_name, job.schema, job.target_table)


def _memory_kb(setting: str) -> int:
    """'64MB' / '1GB' / '65536kB' (as SHOW prints a memory setting) in kB."""
    text = setting.strip()
    for unit, factor in (("TB", 1 << 30), ("GB", 1 << 20), ("MB", 1 << 10), ("kB", 1)):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text) if text.isdigit() else 0
