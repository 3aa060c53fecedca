"""Classify the rows fetched from the differing windows of both sides (pure).

A fetched keyed row is (key hash, row hash, key values..., [synced]); `synced`
(MySQL only) is 0 for a row beyond the watermark the target has loaded: such a
key is pending, never a difference, whatever the target holds for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Row = Sequence[Any]


@dataclass
class Diff:
    missing: list[tuple[Any, ...]] = field(default_factory=list)  # key values (from MySQL)
    extra: list[tuple[Any, ...]] = field(default_factory=list)  # key values (from the target)
    different: list[tuple[Any, ...]] = field(default_factory=list)
    missing_rows: int = 0  # keyless: counted, no keys
    extra_rows: int = 0


def classify_keyed(source: Sequence[Row], target: Sequence[Row], nkey: int, synced: bool) -> Diff:
    """`synced`: the source rows carry the synced flag after their key values."""
    d = Diff()
    src = {_key(r[0]): r for r in source}
    tgt = {_key(r[0]): r for r in target}
    for k, r in src.items():
        if synced and not r[2 + nkey]:
            continue  # pending, whatever the target holds for it
        if k not in tgt:
            d.missing.append(tuple(r[2:2 + nkey]))
        elif _key(tgt[k][1]) != _key(r[1]):
            d.different.append(tuple(r[2:2 + nkey]))
    d.extra = [tuple(r[2:2 + nkey]) for k, r in tgt.items() if k not in src]
    return d


def _key(v: Any) -> Any:
    """A key hash, or an integer key standing for one (PostgreSQL sends numeric(20,0) as Decimal)."""
    return v if isinstance(v, str) else int(v)


def classify_keyless(source: Sequence[Row], target: Sequence[Row]) -> Diff:
    """Rows are (row hash, count): the two multisets' differences."""
    src = {r[0]: int(r[1]) for r in source}
    tgt = {r[0]: int(r[1]) for r in target}
    d = Diff()
    for h in src.keys() | tgt.keys():
        n = src.get(h, 0) - tgt.get(h, 0)
        if n > 0:
            d.missing_rows += n
        else:
            d.extra_rows -= n
    return d


def differing(source: dict[int, tuple[Any, ...]], target: dict[int, tuple[Any, ...]]) -> list[int]:
    """Windows whose count or checksums differ (or that one side lacks)."""
    return sorted(b for b in source.keys() | target.keys() if _norm(source.get(b)) != _norm(target.get(b)))


def same(source: tuple[Any, ...], target: tuple[Any, ...]) -> bool:
    """Two aggregates (count, checksums...) are equal."""
    return _norm(source) == _norm(target)


def _norm(agg: tuple[Any, ...] | None) -> tuple[int, ...] | None:
    return tuple(int(v) for v in agg) if agg else None
