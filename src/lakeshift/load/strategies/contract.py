"""The interface every write strategy implements: a strategy gets the batch's
`MoveJob` inside the batch's one transaction, after the target table has its
new shape and staging holds the batch, runs its SQL, and returns `Moved`: the
row counts for the load record and the last step before COMMIT (by default:
drop staging; the table swap puts staging in the target's place instead)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from lakeshift.batch import Manifest
from lakeshift.identifiers import qualified_ansi, quote_ansi
from lakeshift.load import sql
from lakeshift.load.dialects import TypeDialect
from lakeshift.load.session import Session
from lakeshift.load.types import TType

STAGE_ALIAS = '"_lakeshift_s"'  # how the staging rows are referred to in every move (see sql.RESERVED_TABLE_PREFIX)


@dataclass(frozen=True)
class MoveJob:
    """One batch on its way from staging into the target table: what every strategy may use."""

    manifest: Manifest
    dialect: TypeDialect
    schema: str
    target_table: str
    stage_name: str
    stage_sql: str  # how statements name the staging table
    ordinal: bool  # staging carries _lakeshift_ord (file order) to pick the newest of a repeated key
    types: Mapping[str, TType] = field(default_factory=dict)  # column -> the target's type after the schema plan
    max_delete_fraction: float | None = None  # a soft full_sync's guard (load/delete_guard.py); None: no limit

    @property
    def target_sql(self) -> str:
        return qualified_ansi(self.schema, self.target_table)

    @property
    def staged(self) -> bool:
        """The batch has parts, so a staging table holds its rows (an empty snapshot has none)."""
        return bool(self.manifest.files)

    def columns(self) -> tuple[list[str], list[str], list[str]]:
        """The batch's column names, the staging expressions that give the target's
        types, and the cursor columns that pick the newest of a repeated key."""
        m = self.manifest
        names = [c.name for c in m.columns]
        exprs = [self.dialect.insert_expr(c, f"{STAGE_ALIAS}.{quote_ansi(c.name)}", self.types[c.name])
                 for c in m.columns]
        order = list(dict.fromkeys(c for c in (m.cursor_timestamp_column, m.cursor_id_column) if c and c in names))
        return names, exprs, order

    def insert_newest(self) -> str:
        """INSERT ... SELECT of the staged rows, the newest row of each key only."""
        names, exprs, order = self.columns()
        return sql.insert_rows(self.target_sql, self.stage_sql, names, exprs, self.manifest.primary_key, order,
                               ordinal=self.ordinal)


Finish = Callable[[Session, MoveJob], None]


def drop_stage(s: Session, job: MoveJob) -> None:
    """The usual last step: staging is dropped in the transaction that used it."""
    if job.staged:
        s.execute(sql.drop_table(job.stage_sql))


@dataclass(frozen=True)
class Moved:
    """What a strategy did: rows deleted and inserted (for the load record), and what ends it."""

    deleted: int
    inserted: int
    finish: Finish = drop_stage
    gone: int | None = None  # rows gone from the source, when the strategy tells them apart (binlog deletes)


class MoveStrategy(Protocol):
    """How the staged rows become the target's rows. Runs in the batch's transaction,
    after schema changes and staging, before the load record is written."""

    def move(self, s: Session, job: MoveJob) -> Moved: ...


@dataclass(frozen=True)
class NoRows:
    """A merge or append batch without parts: nothing to move."""

    def move(self, s: Session, job: MoveJob) -> Moved:
        return Moved(0, 0)
