"""A binlog table's columns now, compared with those of its newest batch in the
lake (the schema the stream was last read with), before the changes since are
read. Today's schema evolution (engine/schema_watch.py), applied to the stream:

- a column added (or a possible rename: a new name at a gone one's position):
  existing rows need its values, which no change carries; as an incremental
  table re-reads every row, this run takes a new snapshot at the server's
  position now, after the ALTER (the changes before it are superseded);
- a column gone: the change images before the DROP still carry it; their
  values of it are not kept, and the target keeps the column (NULL in every
  row written from now on), as for every strategy;
- a column of another type: the changes read before the ALTER are decoded
  into the new type. A widening is applied by the load; a value that does
  not fit stops the table (source/binlog/decode.py), as the load stops on a
  type it cannot change in place, each with the way out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lakeshift.batch import Column, change_columns
from lakeshift.engine.schema_diff import RefColumn, describe, diff_columns


@dataclass
class StreamSchema:
    resnapshot: bool = False
    notes: list[str] = field(default_factory=list)


def follow_schema(columns: list[Column], table_lake: Any) -> StreamSchema:
    """What this run does about the source's columns `columns` (now) against the newest batch's."""
    newest = table_lake.newest_manifest()
    if newest is None:
        return StreamSchema()  # no batch left in the lake to compare with: the stream's images are checked
    own = {c.name for c in change_columns()}
    change = diff_columns([RefColumn(c.name, c.mysql_type) for c in newest.columns if c.name not in own], columns)
    if not change:
        return StreamSchema()
    notes = [text for _, text in describe(change, False)]
    if change.new_columns:
        names = ", ".join([c.name for c in change.added] + [r.new for r in change.renamed])
        notes.append(f"new column(s) {names}: existing rows need their values, which no change carries; "
                     f"new snapshot (as an incremental table re-reads every row)")
    return StreamSchema(change.new_columns, notes)
