"""Checksums of the rows that share one cursor timestamp (a "tie"), computed
in MySQL, so a run can restart right after its watermark when nothing changed
there, and AT its timestamp when something did.

A cursor read can only skip the rows on its watermark's timestamp if they are
exactly the rows it read: a row written later within that same second (or
microsecond) with a smaller id, or a tied row changed in place, would be lost
forever. So each run takes the checksum of the tie at its upper bound BEFORE it
reads (a row changing after it makes the next checksum differ, never the
other way round) and keeps it in the watermark (Cursor.ties). The next run
checksums the rows now at the watermark's timestamp: equal, it starts after
the watermark (no row re-read: a bulk UPDATE that stamped 20k rows with one
timestamp is not read again on every run); different, it starts AT the
timestamp and merges the tie again by key.

The checksum is COUNT(*) and two sums of 60-bit pieces of MD5 over every
column's quoted bytes (NULL quoted as NULL): order-free, and computed from the
table's own rows (an index range on the cursor, no data sent)."""

from __future__ import annotations

from typing import Any

from lakeshift.source import keys as K
from lakeshift.source.convert import ref


def tie_sum(pool: Any, desc: Any, from_sql: str, ts: K.KeyCol, value: Any,
            upto: tuple[list[K.KeyCol], list[Any]] | None, where: str) -> str:
    """Checksum of the rows with `ts` = `value` (and a position up to `upto`)."""
    quoted = ", ".join(f"QUOTE(CAST({ref(i.name)} AS BINARY))" for i in desc.infos)
    conds = [f"{ts.sql} = {ts.literal(value)}"] + ([K.upto(*upto)] if upto else [])
    sql = ("SELECT COUNT(*), COALESCE(SUM(CONV(SUBSTRING(h, 1, 15), 16, 10)), 0), "
           "COALESCE(SUM(CONV(SUBSTRING(h, 16, 15), 16, 10)), 0) "
           f"FROM (SELECT MD5(CONCAT_WS(',', {quoted})) AS h FROM {from_sql} WHERE {' AND '.join(conds)}) AS t")
    (count, a, b), = pool.query(sql, None, where)
    return f"{int(count)}:{int(a):x}:{int(b):x}"
