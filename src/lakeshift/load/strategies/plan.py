"""The choice of a write strategy: pure, from the batch's mode and the facts
about its target table (no database), so it is tested on facts alone.

A new mode is one strategy class plus one entry in MODES; the modes a batch
may have are the keys of MODES."""

from __future__ import annotations

from collections.abc import Callable

from lakeshift.errors import LoadError
from lakeshift.load.strategies.append import Append
from lakeshift.load.strategies.changes import ApplyChanges
from lakeshift.load.strategies.contract import MoveStrategy, NoRows
from lakeshift.load.strategies.delete import DeleteKeys, SoftDelete
from lakeshift.load.strategies.history import WriteHistory
from lakeshift.load.strategies.facts import TableFacts, prefer_key_lookups, swap_blocker, upsert_possible
from lakeshift.load.strategies.merge import DeleteInsert
from lakeshift.load.strategies.replace import Replace
from lakeshift.load.strategies.soft_replace import SoftReplace, SoftSwap
from lakeshift.load.strategies.swap import Swap
from lakeshift.load.strategies.upsert import Upsert


def _replace(facts: TableFacts) -> MoveStrategy:
    """full_sync: every row of the table is replaced. PostgreSQL stages such a batch
    in the target's own types when it can (catalog.swap is then set) and swaps
    tables when that loses nothing; otherwise DELETE + INSERT."""
    swap = facts.catalog.swap if facts.catalog is not None else None
    if facts.soft_delete:  # a table made by this batch has no row to mark
        return _soft_replace(facts, swap is not None) if facts.exists else Replace()
    if not facts.staged or swap is None:
        return Replace()
    why = swap_blocker(facts)
    if why:
        return Replace(instead_of_swap=why)
    return Swap(estimated_rows=facts.catalog.estimated_rows if facts.catalog else 0, staged_rows=facts.staged_rows)


def _soft_replace(facts: TableFacts, swap_staged: bool) -> MoveStrategy:
    """full_sync, hard_deletes: soft: the rows the snapshot lacks are kept, marked. The swap
    is kept where it loses nothing (only those rows are copied into staging)."""
    if facts.staged and swap_staged and not swap_blocker(facts):
        return SoftSwap(staged_rows=facts.staged_rows)
    return SoftReplace()


def _delete(facts: TableFacts) -> MoveStrategy:
    """A delete batch: its keys' rows removed, or marked (soft). A table not there has none."""
    if not facts.staged or not facts.exists:
        return NoRows()
    return SoftDelete() if facts.soft_delete else DeleteKeys()


def _merge(facts: TableFacts) -> MoveStrategy:
    """Rows replaced by key: an upsert where it has the same effect (PostgreSQL),
    else DELETE of the batch's keys + INSERT."""
    if not facts.staged:
        return NoRows()
    if not facts.exists:
        return DeleteInsert(delete=False)
    if facts.catalog is None:
        return DeleteInsert()
    if upsert_possible(facts):
        return Upsert(target_columns=facts.catalog.columns)
    return DeleteInsert(analyze=True, key_lookups=prefer_key_lookups(facts))


def _append(facts: TableFacts) -> MoveStrategy:
    """No key: the batch's window is replaced (a table made by this batch has none to replace)."""
    if not facts.staged:
        return NoRows()
    return Append(window=facts.exists)


def _changes(facts: TableFacts) -> MoveStrategy:
    """Changes from the binlog: newest change per key wins, deletes remove the row (or mark it: soft)."""
    if not facts.staged:
        return NoRows()
    return ApplyChanges(delete=facts.exists, soft=facts.soft_delete)


MODES: dict[str, Callable[[TableFacts], MoveStrategy]] = {"replace": _replace, "merge": _merge, "append": _append,
                                                          "delete": _delete, "changes": _changes}


def plan_move(mode: str, facts: TableFacts) -> MoveStrategy:
    """The strategy that moves a batch of `mode` into the table `facts` describe."""
    choose = MODES.get(mode)
    if choose is None:
        raise LoadError(f"unknown mode {mode!r}; lakeshift loads {', '.join(MODES)}")
    if facts.history:  # every mode becomes versions (an empty snapshot: tombstones for every live key)
        nothing = (not facts.staged and not (mode == "replace" and facts.exists)) or (
            mode == "delete" and not facts.exists)
        return NoRows() if nothing else WriteHistory(key_lookups=prefer_key_lookups(facts))
    return choose(facts)
