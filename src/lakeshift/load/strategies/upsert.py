"""Merge as one INSERT ... ON CONFLICT (key) DO UPDATE (PostgreSQL), chosen only
where it has the same effect as DELETE + INSERT (see facts.upsert_possible):
each changed row is probed once instead of deleted and inserted again. Columns
only in the target get their DEFAULT, as a re-inserted row would."""

from __future__ import annotations

from dataclasses import dataclass

from lakeshift.identifiers import quote_ansi
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import Moved, MoveJob


@dataclass(frozen=True)
class Upsert:
    target_columns: tuple[str, ...] = ()  # every column an INSERT can set, the batch's and the target's own

    def statement(self, job: MoveJob) -> str:
        key = job.manifest.primary_key
        names, _, _ = job.columns()
        sets = [f"{quote_ansi(n)} = EXCLUDED.{quote_ansi(n)}" for n in names if n not in key]
        sets += [f"{quote_ansi(n)} = DEFAULT" for n in self.target_columns if n not in names]
        if not sets:  # every column is in the key: the row is already there as it should be
            sets = [f"{quote_ansi(key[0])} = EXCLUDED.{quote_ansi(key[0])}"]
        return (job.insert_newest()
                + f" ON CONFLICT ({', '.join(quote_ansi(k) for k in key)}) DO UPDATE SET {', '.join(sets)}")

    def move(self, s: Session, job: MoveJob) -> Moved:
        # xmax is 0 for a row the INSERT made and set for one it updated: replaced rows count as deleted
        (written, replaced), = s.query(f"WITH u AS ({self.statement(job)} RETURNING (xmax <> 0) AS replaced) "
                                       "SELECT count(*), count(*) FILTER (WHERE replaced) FROM u")
        return Moved(int(replaced), int(written))
