"""scd_type: type_2 in the engine: the table's history settings given to each
batch when it is loaded (checked against the batch's columns, one line naming
the table and column), and how `--dry-run` and `config show-pipeline` say it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lakeshift.batch import History, Manifest
from lakeshift.errors import ConfigError
from lakeshift.load.scd2_sql import HISTORY_COLUMNS

OWN_PREFIX = "_lakeshift_"  # lakeshift's columns (binlog _lakeshift_op ...) are never tracked


def with_history(manifest: Manifest, cfg: Any, table: str, plan: Any) -> Manifest:
    """The batch with the table's history settings (and the run's --force-deletes, `plan`),
    or as it is when the table keeps none."""
    if cfg.scd_type is None:
        return manifest
    names = [c.name for c in manifest.columns]
    if not manifest.deletes:  # a delete batch holds only the key columns
        _check_columns(table, manifest, names, cfg)
    key = tuple(cfg.business_key)
    tracked = tuple(cfg.scd_columns) if cfg.scd_columns is not None else tuple(
        n for n in names if n not in key and not n.startswith(OWN_PREFIX))
    return replace(manifest, history=History(key, tracked, cfg.max_delete_fraction, plan.force_deletes))


def _check_columns(table: str, m: Manifest, names: list[str], cfg: Any) -> None:
    where = f"tables.{table}"
    for k in cfg.business_key:
        if k not in names:
            raise ConfigError(f"{where}.business_key: column {k!r} is not a column of {m.source_table} "
                              f"(it has {', '.join(names)}); fix business_key")
    for c in cfg.scd_columns or ():
        if c not in names:
            raise ConfigError(f"{where}.scd_columns: column {c!r} is not a column of {m.source_table} "
                              f"(it has {', '.join(names)}); fix scd_columns")
    clash = sorted(set(names) & set(HISTORY_COLUMNS))
    if clash:
        raise ConfigError(f"{where}: source column {clash[0]!r} collides with the history's own column; rename it")


def describe_history(cfg: Any) -> str | None:
    """One line on the table's history (None: it keeps none)."""
    if cfg.scd_type is None:
        return None
    tracked = ", ".join(cfg.scd_columns) if cfg.scd_columns is not None else "every non-key column"
    return (f"history (SCD2) on business_key {', '.join(cfg.business_key)}: a change in {tracked} opens a version "
            "(_lakeshift_valid_from/_valid_to/_is_current/_is_deleted/_row_hash), other changes update the "
            f"current version in place; deletes write a tombstone (at most max_delete_fraction "
            f"{cfg.max_delete_fraction:g} of the live keys per batch)")
