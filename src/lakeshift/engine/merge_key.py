"""Which columns identify a row of a table (its merge key), where that came
from, and whether a batch must be checked for repeats.

A merge on a key that does not identify rows replaces real rows with others
("newest wins" keeps one of each key), so the key is only ever one MySQL
declares unique, or one the user configured and lakeshift checks in every batch:
1. `primary_key` configured: used; if MySQL declares a unique key among its
   columns it is unique by construction, else every batch is checked for a
   repeated value (a repeat fails the table, nothing is loaded). A configured
   key that is not unique while the table HAS a unique key is refused: it
   could only be wrong, and a repeat across batches cannot be seen.
2. the source's primary key;
3. else a unique index whose columns are all NOT NULL (NULLs never compare equal);
4. else none: the table may only append (timestamp_only, windows replaced) or
   be replaced whole (full_sync); hybrid and id_only are refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakeshift.config.models import TableConfig
from lakeshift.errors import ConfigError, SourceError


@dataclass(frozen=True)
class MergeKey:
    columns: list[str]  # [] = the table has no key: append or replace only
    origin: str  # for --dry-run and messages, e.g. "the source's primary key"
    declared_unique: bool = True  # False: MySQL does not promise it; every batch is checked

    def describe(self) -> str:
        if not self.columns:
            return "no key"
        return f"({', '.join(self.columns)}) from {self.origin}"


def resolve_merge_key(table: str, cfg: TableConfig, desc: Any) -> MergeKey:
    """The merge key of pipeline table `table` (see the module doc). Raises a
    one-line ConfigError when the configuration cannot identify rows."""
    usable = desc.identifying_keys()
    if cfg.primary_key:
        wanted = list(cfg.primary_key)
        for c in wanted:
            desc.info(c)  # one line naming the table and its columns when c is not one of them
        if getattr(desc, "custom_sql", None):  # MySQL promises nothing about a query's rows
            return MergeKey(wanted, "primary_key (of the custom_sql's rows: each batch is checked)",
                            declared_unique=False)
        for index, cols in usable:
            if set(cols) <= set(wanted):
                how = "PRIMARY KEY" if index == "PRIMARY" else f"unique index {index}"
                return MergeKey(wanted, f"primary_key (unique in MySQL by its {how})")
        if usable:
            index, cols = usable[0]
            raise ConfigError(
                f"tables.{table}.primary_key ({', '.join(wanted)}) is not unique in MySQL {desc.full_name}, whose "
                f"{'primary key' if index == 'PRIMARY' else 'unique index ' + index} is ({', '.join(cols)}): merging "
                f"on it would replace rows that share a value. Remove primary_key to merge on "
                f"({', '.join(cols)}), or list columns that include a unique key")
        return MergeKey(wanted, "primary_key (not declared unique in MySQL: each batch is checked)",
                        declared_unique=False)
    if usable:
        index, cols = usable[0]
        origin = "the source's primary key" if index == "PRIMARY" else f"the source's unique index {index}"
        return MergeKey(list(cols), origin)
    return MergeKey([], "none")


def check_strategy(table: str, cfg: TableConfig, key: MergeKey, desc: Any) -> None:
    """hybrid/id_only read changed rows and must merge them into the rows they
    change: without a key that is impossible, so refuse before anything runs."""
    if key.columns or cfg.cdc_strategy not in ("hybrid", "id_only", "binlog"):
        return
    raise ConfigError(
        f"tables.{table}: cdc_strategy {cfg.cdc_strategy} merges changed rows by key, but MySQL {desc.full_name} "
        f"has no primary key or unique index on NOT NULL columns; declare one in MySQL, set primary_key to "
        f"columns that identify a row, or use cdc_strategy timestamp_only (appends new rows) or full_sync")


def batch_mode(cfg: TableConfig, key: MergeKey) -> str:
    if cfg.cdc_strategy == "full_sync":
        return "replace"
    return "merge" if key.columns else "append"


class RepeatCheck:
    """Collects the key columns of a batch's rows (only for keys MySQL does not
    declare unique) and finds a value that repeats: memory is the key columns
    of one batch, never the rows."""

    def __init__(self, table: str, key: MergeKey) -> None:
        self.table, self.key = table, key
        self.active = bool(key.columns) and not key.declared_unique
        self._parts: list[pa.Table] = []

    def add(self, batch: pa.RecordBatch) -> None:
        if self.active and batch.num_rows:
            self._parts.append(pa.Table.from_batches([batch.select(self.key.columns)]))

    def check(self) -> None:
        if not self._parts:
            return
        keys = self.key.columns
        counts = pa.concat_tables(self._parts).group_by(keys).aggregate([([], "count_all")])
        repeated = counts.filter(pc.greater(counts["count_all"], 1))
        self._parts = []
        if repeated.num_rows:
            row = repeated.slice(0, 1).to_pylist()[0]
            value = ", ".join(f"{k}={_show(row[k])}" for k in keys)
            raise SourceError(
                f"tables.{self.table}.primary_key ({', '.join(keys)}) does not identify rows: {value} appears "
                f"{row['count_all']} times in this batch (and {repeated.num_rows - 1} more value(s) repeat); "
                "nothing was loaded. Set primary_key to columns that are unique, or declare a unique key in MySQL")


def _show(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
