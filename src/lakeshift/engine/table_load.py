"""The load half of one table's run: every batch the lake holds that the
target has not loaded, oldest first, under the table's load lock. Each batch
is validated and judged by the data quality checks, then committed (merge +
load record in one transaction) from the staging the extract filled, or staged
again from the lake (a batch left by an earlier run)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lakeshift import faults
from lakeshift.batch import Manifest
from lakeshift.batch_state import classify, pending
from lakeshift.engine.contracts import StagedLoad, TargetLoader
from lakeshift.engine.history import with_history
from lakeshift.engine.part_feeder import lake_part
from lakeshift.engine.quality_gate import QualityGate
from lakeshift.engine.staging import StagingSession
from lakeshift.errors import ValidationFailed

if TYPE_CHECKING:
    from lakeshift.engine.plan import Plan, TablePlan
    from lakeshift.engine.progress import TableProgress
    from lakeshift.engine.runner import RunContext
    from lakeshift.engine.table_task import TableResult
    from lakeshift.lake import TableLake


class PendingLoads:
    """Loads one table's pending batches into its target; counts go into `result`."""

    def __init__(self, plan: Plan, table: TablePlan, ctx: RunContext, table_lake: TableLake,
                 progress: TableProgress, result: TableResult) -> None:
        self.plan, self.table, self.ctx, self.table_lake = plan, table, ctx, table_lake
        self.progress, self.result = progress, result
        self.key = plan.pipeline.key

    def pending(self, loader: TargetLoader) -> list[Manifest]:
        records = loader.loaded_batches(self.plan.pipeline.name, self.table.name)
        return pending(classify(self.table_lake.manifests(), records))

    def begin(self, loader: TargetLoader, head: Manifest) -> StagedLoad:
        guard = None if self.plan.force_deletes else self.table.config.max_delete_fraction  # soft full_sync
        return loader.begin(head, self.table.target_table, max_delete_fraction=guard)

    def load(self, loader: TargetLoader, staging: StagingSession) -> None:
        """Load every pending batch, oldest first, under the table's load lock."""
        gate = QualityGate(self.key, self.table, self.ctx.lake, self.table_lake)
        with loader.lock(self.plan.pipeline.name, self.table.name), self._quality_reported(gate):
            batches = self.pending(loader)
            loaded: Manifest | None = None
            for n, manifest in enumerate(batches):
                self.progress.phase("load", note=f"batch {n + 1} of {len(batches)}")
                self._validate(manifest)
                gate.judge(manifest, batches[n + 1:])
                manifest = gate.guarded(manifest, batches[n + 1:])
                manifest = with_history(manifest, self.table.config, self.table.name, self.plan)
                staged = staging if staging.holds(manifest) else self._stage_from_lake(loader, manifest)
                outcome = staged.commit(manifest)
                faults.checkpoint("after_load_commit")
                self.result.notes.extend(outcome.notes)
                if outcome.skipped:
                    continue
                self.result.rows_loaded += outcome.rows
                self.result.rows_deleted += outcome.deleted
                self.result.batches_loaded += 1
                self.result.batches_loaded_ids.append(manifest.batch_id)
                loaded = manifest
            if loaded is not None:
                gate.after_load(loader, loaded)  # on the target as this run leaves it
            staging.abort()  # a staged batch not loaded here was superseded, or loaded by another run meanwhile

    @contextmanager
    def _quality_reported(self, gate: QualityGate) -> Iterator[None]:
        """The checks' results reach the run history and the summary, whatever the outcome."""
        try:
            yield
        finally:
            self.result.quality.extend(gate.lines)
            self.result.notes.extend(f"data quality: {w}" for w in gate.warnings())

    def _validate(self, manifest: Manifest) -> None:
        from lakeshift.load import validate_batch

        t = self.table
        problems = validate_batch(manifest, t.config) if t.config.data_validation else []
        if problems:
            raise ValidationFailed(
                f"{self.key}.{t.name}: batch {manifest.batch_id} not loaded (kept in the lake): "
                + "; ".join(problems) + f". Way out: change the validation rule, or `lakeshift batches skip -p "
                f"{self.key} -t {t.name} {manifest.batch_id} --reason TEXT` (it says how to read its rows again)")

    def _stage_from_lake(self, loader: TargetLoader, manifest: Manifest) -> StagedLoad:
        """Stage a batch the lake holds (left by an earlier run, or not staged while extracted)."""
        staged = self.begin(loader, manifest)
        try:
            for file in manifest.files:
                part = lake_part(self.ctx.lake, self.table_lake, file)
                staged.add_part(part.path, part.filesystem, part.uri, part.file)
        except BaseException:
            staged.abort()
            raise
        return staged
