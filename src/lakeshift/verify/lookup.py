"""The differing windows of a key-only comparison on one integer key, explained
from the target's side first: the target sends its keys of those windows (one
scan there), MySQL is asked for exactly those keys by its primary key (index
lookups, no scan), and a window whose MySQL aggregate (count and both
checksums, recomputed here from the keys found) equals what MySQL reported
holds no key the target lacks. Only the windows left unexplained are fetched
from MySQL in full (a second scan there, as without this step).

A run of `hard_deletes` after rows were deleted in MySQL is the case this is
for: every differing window is explained by the keys gone, so MySQL is scanned
once (its aggregate), not twice. Used without a watermark condition only (a
pending row would leave its window unexplained, which is still correct)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from lakeshift.verify import canonical as C
from lakeshift.verify import diff as D
from lakeshift.verify import queries as Q

KEYS_PER_LOOKUP = 5000  # keys in one IN list


def _tmod(a: int, n: int) -> int:
    """The remainder with the dividend's sign (what every engine's MOD / % gives)."""
    r = abs(a) % n
    return r if a >= 0 else -r


def window_aggregate(keys: Iterable[int]) -> tuple[int, int, int]:
    """(count, SUM(key), SUM((key mod p)^2 mod p)): canonical.int_checksum_items in Python."""
    n = s1 = s2 = 0
    for k in keys:
        m = _tmod(k, C.P)
        n, s1, s2 = n + 1, s1 + k, s2 + m * m % C.P
    return n, s1, s2


def classify(source: Any, target_rows: Sequence[tuple[Any, ...]], shape: Q.Shape, windows: list[int],
             src_agg: dict[int, tuple[Any, ...]]) -> D.Diff:
    """`target_rows`: the target's (key, key, key value) of `windows` (fetch_sql); `source`: a
    SourceSide (lookup, fetch). Returns the missing and extra keys of those windows."""
    mask = shape.buckets - 1
    found: dict[int, list[int]] = defaultdict(list)  # window -> the keys MySQL holds of the target's
    present: set[int] = set()
    for chunk in _chunks([int(r[2]) for r in target_rows], KEYS_PER_LOOKUP):
        for k, in source.lookup(shape, chunk):
            present.add(int(k))
            found[int(k) & mask].append(int(k))
    d = D.Diff(extra=[(r[2],) for r in target_rows if int(r[0]) not in present])
    unexplained = [b for b in windows
                   if window_aggregate(found.get(b, ())) != tuple(int(v) for v in src_agg.get(b, (0, 0, 0)))]
    if unexplained:  # MySQL holds keys the target lacks there: its rows of those windows, as without the lookup
        wanted = set(unexplained)
        rest = D.classify_keyed(source.fetch(shape, unexplained),
                                [r for r in target_rows if int(r[0]) & mask in wanted], 1, False)
        d.missing = rest.missing
    return d


def _chunks(values: list[int], n: int) -> Iterable[list[int]]:
    for i in range(0, len(values), n):
        yield values[i:i + n]
