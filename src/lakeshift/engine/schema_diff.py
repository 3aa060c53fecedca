"""What changed in a source table's columns since the batches already taken:
columns added, gone, possibly renamed, or of another MySQL type. Pure: no I/O,
so every rule is tested without a database (see schema_watch.py for where the
reference columns come from and what a run does about a change)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lakeshift.batch import Column


@dataclass(frozen=True)
class RefColumn:
    """A column of the reference: a batch's column (its MySQL type known) or a
    target table's column (type None: target types say nothing about MySQL's)."""

    name: str
    mysql_type: str | None = None


@dataclass(frozen=True)
class Renamed:
    old: str
    new: str
    mysql_type: str


@dataclass(frozen=True)
class Retyped:
    name: str
    old: str
    new: str


@dataclass
class SchemaChange:
    added: list[Column] = field(default_factory=list)  # new columns (not counting possible renames)
    gone: list[str] = field(default_factory=list)  # columns no longer in the source (not counting renames)
    renamed: list[Renamed] = field(default_factory=list)
    retyped: list[Retyped] = field(default_factory=list)

    @property
    def new_columns(self) -> bool:
        """Columns existing rows do not have in the target yet (added or renamed)."""
        return bool(self.added or self.renamed)

    def __bool__(self) -> bool:
        return bool(self.added or self.gone or self.renamed or self.retyped)


def diff_columns(reference: Sequence[RefColumn], current: Sequence[Column],
                 fold: Callable[[str], str] | None = None) -> SchemaChange:
    """Compare the source's columns now with the reference's. Names are compared
    after `fold` (a target that matches names case-insensitively). A column gone
    while a new one of the same MySQL type appeared at the same ordinal position
    is a possible rename; it needs both types, so a reference without types
    (the target's columns) reports only additions."""
    fold = fold or (lambda name: name)
    typed = all(r.mysql_type is not None for r in reference)
    before = {fold(r.name): r for r in reference}
    now = {fold(c.name) for c in current}
    change = SchemaChange()
    added = [c for c in current if fold(c.name) not in before]
    if typed:
        change.gone = [r.name for r in reference if fold(r.name) not in now]
        for r, c in zip(reference, current):  # the same ordinal position
            if r.name in change.gone and c in added and c.mysql_type == r.mysql_type:
                change.renamed.append(Renamed(r.name, c.name, c.mysql_type))
                change.gone.remove(r.name)
                added.remove(c)
        for c in current:
            old = before.get(fold(c.name))
            if old is not None and old.mysql_type != c.mysql_type:
                change.retyped.append(Retyped(c.name, str(old.mysql_type), c.mysql_type))
    change.added = added
    return change


def describe(change: SchemaChange, reread: bool) -> list[tuple[int, str]]:
    """One (log level, text) per change, in words a user can act on. `reread`:
    this run reads every row again (an incremental table with new columns)."""
    lines: list[tuple[int, str]] = []
    for r in change.renamed:
        lines.append((logging.WARNING,
                      f"column {r.old!r} is gone and {r.new!r} ({r.mysql_type}) appeared at its position: possibly a "
                      f"rename; {r.new!r} is filled for every row, {r.old!r} is kept in the target "
                      "(NULL in every row written from now on)"))
    for c in change.added:
        why = "; re-reading all rows so existing rows get its values" if reread else ""
        lines.append((logging.INFO, f"column {c.name!r} added ({c.mysql_type}){why}"))
    for name in change.gone:
        lines.append((logging.INFO, f"column {name!r} is gone from the source; the target keeps it "
                                    "(NULL in every row written from now on)"))
    for t in change.retyped:
        lines.append((logging.INFO, f"column {t.name!r} changed type: {t.old} -> {t.new}"))
    return lines
