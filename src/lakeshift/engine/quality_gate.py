"""Runs a table's data_quality_checks on each pending batch before its load
transaction (engine/quality_checks.py computes them from the lake), and the
duplicate check on the target (inside the load transaction for severity error:
load/commit.py; after the run's loads for warn).

A check that fails with severity `error` keeps the batch out of the target
(it stays in the lake, pending) and fails the table with one line naming the
check, the column and the offending count; `warn` loads it and reports. A
merge batch that fails is judged once more on the rows that will survive it:
its rows and those of the later pending batches, newest per key. So when the
bad rows were fixed in MySQL, the next run's batch supersedes them, and both
are loaded; nothing is ever dropped or rewritten to pass a check."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from lakeshift.batch import Manifest
from lakeshift.config.quality import DuplicateCheck
from lakeshift.engine.part_feeder import lake_part
from lakeshift.engine.quality_checks import CheckResult, duplicate_key, run_checks, scan_columns
from lakeshift.errors import ValidationFailed

if TYPE_CHECKING:
    from lakeshift.engine.plan import TablePlan
    from lakeshift.lake import Lake, TableLake

_ORDER = "__lakeshift_order"


class QualityGate:
    def __init__(self, pipeline_key: str, table: TablePlan, lake: Lake, table_lake: TableLake) -> None:
        self.pipeline_key, self.table, self.lake, self.table_lake = pipeline_key, table, lake, table_lake
        self.checks = list(table.config.data_quality_checks)
        self.lines: list[str] = []  # every result of this run, for _lakeshift_runs and the summary

    def judge(self, manifest: Manifest, later: Sequence[Manifest]) -> None:
        """Before the load of `manifest` (`later`: the pending batches after it). Raises
        ValidationFailed when a check with severity error fails."""
        if not self.checks or manifest.deletes:
            return
        results = self._run(manifest)
        failed = [r for r in results if not r.passed and r.severity == "error"]
        superseding = [m for m in later if m.mode == "merge" and m.primary_key == manifest.primary_key]
        if failed and manifest.mode == "merge" and superseding:
            effective = self._run_effective([manifest, *superseding])
            if not [r for r in effective if not r.passed and r.severity == "error"]:
                self.lines.append(f"batch {manifest.batch_id}: " + "; ".join(r.line() for r in failed)
                                  + f", superseded by the {len(superseding)} later batch(es): loaded")
                return
        self._report(manifest, results)
        if failed:
            t = self.table.name
            raise ValidationFailed(
                f"{self.pipeline_key}.{t}: batch {manifest.batch_id} not loaded (kept in the lake): data_quality_checks "
                + "; ".join(r.line() for r in failed)
                + f". Fix the rows in MySQL (the next run's batch supersedes them), change the check (or its "
                f"severity: warn), or `lakeshift batches skip -p {self.pipeline_key} -t {t} {manifest.batch_id} "
                "--reason TEXT`")

    def guarded(self, manifest: Manifest, later: Sequence[Manifest]) -> Manifest:
        """The batch as it is loaded: a duplicate_check of severity error on a merge table is
        enforced inside the load transaction (load/commit.py), so a batch that would leave a key
        repeated in the target rolls back and stays in the lake. With later batches pending, the
        check waits for the last of them: a kept batch whose repeat a later one fixes then loads."""
        if manifest.mode not in ("merge", "changes") or manifest.deletes or later:
            return manifest
        keys = tuple(tuple(duplicate_key(c, self.table.config, manifest)) for c in self.checks
                     if isinstance(c, DuplicateCheck) and c.severity == "error")
        return dataclasses.replace(manifest, unique_in_target=keys) if keys else manifest

    def after_load(self, loader: Any, manifest: Manifest) -> None:
        """duplicate_check on a merge table: no key value repeats in the target after the load."""
        if manifest.mode not in ("merge", "changes"):
            return
        for check in (c for c in self.checks if isinstance(c, DuplicateCheck)):
            key = duplicate_key(check, self.table.config, manifest)
            n = loader.repeated_keys(self.table.target_table, key)
            result = CheckResult("duplicate_check (target)", check.severity, not n, ", ".join(key), n,
                                 f"{n:,} key value(s) repeat in the target" if n else "")
            self._report(manifest, [result])
            if n and check.severity == "error":
                raise ValidationFailed(
                    f"{self.pipeline_key}.{self.table.name}: batch {manifest.batch_id} was loaded, but data_quality_checks "
                    f"{result.line()} in target table {self.table.target_table}; remove the repeats there")

    def _report(self, manifest: Manifest, results: list[CheckResult]) -> None:
        for r in results:
            warn = "" if r.passed or r.severity == "error" else " (warn: loaded)"
            self.lines.append(f"{r.line()}{warn}")

    def warnings(self) -> list[str]:
        return [line for line in self.lines if line.endswith("(warn: loaded)")]

    # ------------------------------------------------------------------ data
    def _run(self, manifest: Manifest) -> list[CheckResult]:
        columns = scan_columns(self.checks, manifest, self.table.config)
        return run_checks(self.checks, self.table.config, manifest, self._scan(manifest, columns))

    def _run_effective(self, manifests: list[Manifest]) -> list[CheckResult]:
        """The checks on the rows the target keeps after loading `manifests` (newest per key)."""
        first = manifests[0]
        key = list(first.primary_key)
        view = dataclasses.replace(first, null_counts={})  # NULLs are counted in the scan instead
        columns = list(dict.fromkeys(key + scan_columns(self.checks, view, self.table.config)))
        tables = []
        for m in manifests:
            t = self._scan(m, columns)
            tables.append(t.append_column(_ORDER, pa.array([len(tables)] * t.num_rows, pa.int32())))
        rows = pa.concat_tables(tables, promote_options="default").sort_by(_ORDER)
        others = [c for c in columns if c not in key]
        latest = rows.group_by(key, use_threads=False).aggregate([(c, "last") for c in others] or [([], "count_all")])
        latest = latest.rename_columns([n.removesuffix("_last") for n in latest.column_names])
        view = dataclasses.replace(view, rows=latest.num_rows)
        return run_checks(self.checks, self.table.config, view, latest)

    def _scan(self, manifest: Manifest, columns: list[str]) -> pa.Table:
        """One read of the batch's parts, only `columns` (an empty table of them for none)."""
        if not columns:
            return pa.table({})
        parts = []
        for file in manifest.files:
            part = lake_part(self.lake, self.table_lake, file)
            have = set(pq.read_schema(part.path, filesystem=part.filesystem).names)
            parts.append(pq.read_table(part.path, columns=[c for c in columns if c in have],
                                       filesystem=part.filesystem))
        if not parts:
            return pa.table({c: pa.array([], pa.null()) for c in columns})
        return pa.concat_tables(parts, promote_options="default")
