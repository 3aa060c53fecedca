"""The statements a verify sends, one pure function each, the same for the
source and the target (a `Side` says how one engine names the table and its
columns). Windows are buckets of the key's canonical hash: a row falls in the
same window on both sides whatever their collations and orders, and one
aggregate query per side compares every window of a table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lakeshift.batch import Column
from lakeshift.identifiers import quote_ansi
from lakeshift.verify import canonical as C


@dataclass(frozen=True)
class Side:
    """How one engine's statements name the table and its columns."""

    engine: str
    table_sql: str  # the FROM item
    ref: Callable[[str], str]  # a column reference
    zero_test: Callable[[str], str] | None = None  # MySQL: SQL true for a zero date (NULL in the lake)
    conds: tuple[str, ...] = field(default=())  # rows this side compares (MySQL: the synced ones)
    utf8mb4: frozenset[str] = field(default=frozenset())  # MySQL: the text columns stored as utf8mb4
    key_below_2_63: bool = False  # every integer key of this side is below 2^63 (canonical.int_key)

    def text(self, c: Column, bare: bool = False) -> str:
        zero = self.zero_test(c.name) if self.zero_test and C.kind(c) in ("date", "datetime", "timestamp") else None
        return C.column_text(c, self.engine, self.ref(c.name), zero, c.name in self.utf8mb4, bare)

    def row_hash(self, cols: Sequence[Column]) -> str:
        """canonical.row_hash of `cols`. MySQL: a NOT NULL column's text is never NULL, but a date's (a zero
        date, NULL in the lake); a target's may be (a change)."""
        if self.engine != C.MYSQL:
            return C.row_hash(self.engine, [self.text(c) for c in cols])
        dated = ("date", "datetime", "timestamp")  # a zero date's text is NULL, in a key column too
        return C.row_hash(self.engine, [self.text(c, bare=True) for c in cols],
                          [c.nullable or C.kind(c) in dated for c in cols])

    def where(self, extra: Sequence[str] = ()) -> str:
        conds = [*self.conds, *extra]
        return " WHERE " + " AND ".join(f"({c})" for c in conds) if conds else ""


def target_side(engine: str, schema: str, table: str, conds: Sequence[str] = ()) -> Side:
    """A target table's Side (its names quoted as ANSI SQL; `conds`: its live rows)."""
    return Side(engine, f"{quote_ansi(schema)}.{quote_ansi(table)}", quote_ansi, conds=tuple(conds))


@dataclass(frozen=True)
class Shape:
    """What is hashed: the key (windows and row identity) and the row (checksums)."""

    key: list[Column]  # [] = keyless: the row is its own key
    row: list[Column]  # columns in the row checksum (the key alone, or every SQL-hashable column)
    buckets: int

    @property
    def integer_key(self) -> bool:
        """A key of one integer column: the key itself stands for its hash (canonical.py)."""
        return len(self.key) == 1 and C.kind(self.key[0]) == "int"

    @property
    def keys_only(self) -> bool:
        return self.row == self.key

    def bucket(self, side: Side, k: str) -> str:
        if self.integer_key:
            return C.int_bucket(side.engine, k, self.buckets)
        return C.bucket(side.engine, k, self.buckets)

    def sums(self, side: Side, h: str) -> list[str]:
        if self.integer_key and self.keys_only:
            return C.int_checksum_items(side.engine, h)
        return C.checksum_items(side.engine, h)

    def hashes(self, side: Side) -> tuple[str, str]:
        """(key hash, row hash) as SQL on `side`."""
        if self.integer_key:
            k = C.int_key(self.key[0], side.engine, side.ref(self.key[0].name), side.key_below_2_63)
            return k, k if self.keys_only else side.row_hash(self.row)
        hr = side.row_hash(self.row)
        hk = side.row_hash(self.key) if self.key else hr
        return hk, hr


def aggregate_sql(side: Side, shape: Shape) -> str:
    """Per window: its bucket, row count and checksums of the row hashes."""
    hk, hr = shape.hashes(side)
    same = hk == hr
    sums = ", ".join(shape.sums(side, "h"))
    inner = f"SELECT {hk} AS k" + ("" if same else f", {hr} AS h") + f" FROM {side.table_sql}{side.where()}"
    middle = f"SELECT {shape.bucket(side, 'k')} AS b, {'k' if same else 'h'} AS h FROM ({inner}) x"
    return f"SELECT b, COUNT(*), {sums} FROM ({middle}) y GROUP BY b"


def whole_sql(side: Side, shape: Shape) -> str:
    """The first pass: the whole table as one window (no GROUP BY), its count and checksums,
    compared before any window. Keys only with an integer key: one more checksum (mix_item), as the
    key's sums are polynomials of it; a row hash (--deep, keyless, other keys) is md5 pieces, which
    no identity cancels."""
    _, hr = shape.hashes(side)
    mix = [mix_item(side.engine, "h")] if shape.integer_key and shape.keys_only else []
    items = [*shape.sums(side, "h"), *mix]
    return f"SELECT COUNT(*), {', '.join(items)} FROM (SELECT {hr} AS h FROM {side.table_sql}{side.where()}) x"


def mix_item(engine: str, k: str) -> str:
    """A sum no polynomial identity cancels (unlike SUM(key) and the sum of squares: {1, 5, 6} and
    {2, 3, 7} agree on both), for a first pass over the whole table, where any keys may combine:
    m = key mod p, summed as ((m * 48271 mod p) mod 2^16) * m: the low bits of a multiple taken
    modulo p are no polynomial of the key. Remainders keep the dividend's sign on every engine;
    |values| below 2^47, summed as DECIMAL / numeric / HUGEINT / DECIMAL(38,0)."""
    p = C.P
    if engine == C.MYSQL:
        m = f"MOD({k}, {p})"
        item = f"MOD(MOD({m} * 48271, {p}), 65536) * {m}"
    else:
        mod = (lambda x, n: f"MOD({x}, {n})") if engine == C.REDSHIFT else (lambda x, n: f"(({x}) % {n})")
        m = mod(k, p)
        item = f"{mod(mod(f'{m} * 48271', p), 65536)} * {m}"
    if engine == C.REDSHIFT:
        item = f"CAST({item} AS DECIMAL(38,0))"
    return f"COALESCE(SUM({item}), 0)"


def count_sql(side: Side, extra: Sequence[str] = ()) -> str:
    return f"SELECT COUNT(*) FROM {side.table_sql}{side.where(extra)}"


def fetch_sql(side: Side, shape: Shape, buckets: Sequence[int], extra: Sequence[tuple[str, str]] = (),
              use_conds: bool = True) -> str:
    """Key hash, row hash and the key columns of the rows in `buckets`; `extra`:
    more (expression, alias) items, e.g. MySQL's "is this row synced" flag.
    Keyless: each distinct row hash with its count."""
    hk, hr = shape.hashes(side)
    where = side.where() if use_conds else ""
    in_list = ", ".join(str(int(b)) for b in buckets)
    pick = f"{shape.bucket(side, 'k')} IN ({in_list})"
    if not shape.key:
        inner = f"SELECT {hk} AS k FROM {side.table_sql}{where}"
        return f"SELECT k, COUNT(*) FROM ({inner}) x WHERE {pick} GROUP BY k"
    items = [f"{hk} AS k", f"{hr} AS h"] + [f"{side.ref(c.name)} AS c{i}" for i, c in enumerate(shape.key)]
    items += [f"{expr} AS {alias}" for expr, alias in extra]
    names = ["k", "h"] + [f"c{i}" for i in range(len(shape.key))] + [alias for _, alias in extra]
    inner = f"SELECT {', '.join(items)} FROM {side.table_sql}{where}"
    return f"SELECT {', '.join(names)} FROM ({inner}) x WHERE {pick}"


def bucket_count(rows: int) -> int:
    """Windows for a table of about `rows` rows: ~64 rows each (a power of two,
    16 to 2^20), so the rows fetched for a few differing keys stay few."""
    n = 16
    while n < rows // 64 and n < 1 << 20:
        n *= 2
    return n
