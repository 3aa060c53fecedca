"""OpenLineage events for a sync: per table a START run event, then COMPLETE or
FAIL, whose inputs are the MySQL table and the lake batches and whose output is
the target table (a --backup-only run: the lake batches are its outputs).

Optional (`pip install lakeshift[openlineage]`) and configured the standard
OpenLineage way: OPENLINEAGE_URL, OPENLINEAGE_CONFIG / openlineage.yml or
OPENLINEAGE__TRANSPORT__* variables, read by the client itself. Without any of
them nothing is imported. Lineage never fails a run: the first failed emit logs
one warning and turns the emitter off for the rest of the run."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lakeshift.redact import redact

if TYPE_CHECKING:
    from lakeshift.batch import Column, Manifest
    from lakeshift.engine.plan import Plan, TablePlan
    from lakeshift.engine.runner import RunContext
    from lakeshift.engine.table_task import TableResult

log = logging.getLogger("lakeshift.lineage")
PRODUCER = "https://pypi.org/project/lakeshift/"
R = TypeVar("R")


def configured() -> bool:
    """OpenLineage is configured for this process (cheap: environment and two file checks)."""
    env = os.environ
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OPENLINEAGE_URL") or env.get("OPENLINEAGE_CONFIG"):
        return True
    if any(k.startswith("OPENLINEAGE__TRANSPORT") for k in env):
        return True
    return any(p.is_file() for p in (Path.cwd() / "openlineage.yml", Path.home() / ".openlineage" / "openlineage.yml"))


def open_lineage(plan: Plan, ctx: RunContext) -> RunLineage | None:
    """The run's lineage emitter, or None when OpenLineage is not configured or
    the client cannot be built (one warning line: the run goes on)."""
    if not configured():
        return None
    if find_spec("openlineage") is None:
        log.warning("OpenLineage is configured but lakeshift[openlineage] is not installed; "
                    "no lineage is sent (pip install 'lakeshift[openlineage]')")
        return None
    if not os.environ.get("OPENLINEAGE_CLIENT_LOGGING"):  # the client's own knob for its log level
        logging.getLogger("openlineage").setLevel(logging.CRITICAL)  # our one warning line says it all
    try:
        from openlineage.client import OpenLineageClient

        return RunLineage(plan, ctx, OpenLineageClient())
    except Exception as exc:  # noqa: BLE001 - a bad lineage config never fails a sync
        log.warning("OpenLineage: could not set up the client (%s); no lineage is sent for this run",
                    _short(exc))
        return None


class RunLineage:
    """Emits the events of one run's tables; shared by the run's table threads."""

    def __init__(self, plan: Plan, ctx: RunContext, client: Any) -> None:
        self.plan, self.ctx, self.client = plan, ctx, client
        self.namespace = os.environ.get("OPENLINEAGE_NAMESPACE") or "lakeshift"
        self._lock = threading.Lock()
        self._off = False
        self.source = _safe(lambda: plan.config.source(plan.pipeline.pipeline.source))
        self.target = ctx.target

    def around(self, table: TablePlan, result: TableResult, run: Callable[[], R]) -> R:
        """`run()` between a START and a COMPLETE/FAIL (ABORT on Ctrl-C) event of `table`."""
        from openlineage.client.uuid import generate_new_uuid

        run_id = str(generate_new_uuid())  # UUIDv7, as the spec recommends
        self._emit("START", table, run_id, None, None)
        try:
            out = run()
        except BaseException as exc:
            self._emit("ABORT" if isinstance(exc, KeyboardInterrupt) else "FAIL", table, run_id, result, exc)
            raise
        self._emit("COMPLETE", table, run_id, result, None)
        return out

    # ------------------------------------------------------------- emitting
    def _emit(self, kind: str, table: TablePlan, run_id: str, result: TableResult | None,
              error: BaseException | None) -> None:
        if self._off:
            return
        try:
            event = self._event(kind, table, run_id, result, error)
            with self._lock:
                if not self._off:
                    self.client.emit(event)
        except Exception as exc:  # noqa: BLE001 - lineage never fails a run
            with self._lock:
                first, self._off = not self._off, True
            if first:
                log.warning("OpenLineage: could not send the %s event of %s (%s); no more lineage is sent "
                            "for this run", kind, table.name, _short(exc))

    def _event(self, kind: str, table: TablePlan, run_id: str, result: TableResult | None,
               error: BaseException | None) -> Any:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job

        from lakeshift.batch import utc_now_iso

        run_facets: dict[str, Any] = {}
        if error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=redact(str(error) or type(error).__name__), programmingLanguage="python")
        job = Job(namespace=self.namespace, name=f"{self.plan.pipeline.key}.{table.name}", facets={
            "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="LAKESHIFT",
                                                    jobType="TABLE_SYNC")})
        inputs, outputs = self._datasets(table, result)
        return RunEvent(eventType=getattr(RunState, kind), eventTime=utc_now_iso(), producer=PRODUCER,
                        run=Run(runId=run_id, facets=run_facets), job=job, inputs=inputs, outputs=outputs)

    # ------------------------------------------------------------- datasets
    def _datasets(self, table: TablePlan, result: TableResult | None) -> tuple[list[Any], list[Any]]:
        from openlineage.client.event_v2 import InputDataset, OutputDataset
        from openlineage.client.facet_v2 import input_statistics_input_dataset as ins
        from openlineage.client.facet_v2 import output_statistics_output_dataset as outs

        manifests = self._manifests(table, result)
        columns = next((m.columns for m in reversed(manifests) if not m.deletes), None)
        inputs: list[Any] = []
        outputs: list[Any] = []
        src = source_dataset(self.source, table)
        if src is not None:
            facets = {"inputStatistics": ins.InputStatisticsInputDatasetFacet(rowCount=result.rows_extracted)} \
                if result is not None and self.plan.stages.extract else {}
            inputs.append(InputDataset(namespace=src[0], name=src[1], facets=_schema(columns, "mysql"),
                                       inputFacets=facets))
        for m in manifests:
            for ns, name in lake_datasets(self.ctx, table.name, m):
                if self.plan.stages.load:
                    inputs.append(InputDataset(namespace=ns, name=name, facets=_schema(m.columns, "lake"),
                                               inputFacets={"inputStatistics": ins.InputStatisticsInputDatasetFacet(
                                                   rowCount=m.rows, size=m.bytes, fileCount=len(m.files))}))
                else:  # --backup-only: the batches are what the run made
                    outputs.append(OutputDataset(namespace=ns, name=name, facets=_schema(m.columns, "lake"),
                                                 outputFacets={"outputStatistics": outs.OutputStatisticsOutputDatasetFacet(
                                                     rowCount=m.rows, size=m.bytes, fileCount=len(m.files))}))
        dst = target_dataset(self.target, table.target_table)
        if dst is not None and self.plan.stages.load:
            facets = {"outputStatistics": outs.OutputStatisticsOutputDatasetFacet(rowCount=result.rows_loaded)} \
                if result is not None else {}
            outputs.append(OutputDataset(namespace=dst[0], name=dst[1],
                                         facets=_schema(columns, getattr(self.target, "type", "")),
                                         outputFacets=facets))
        return inputs, outputs

    def _manifests(self, table: TablePlan, result: TableResult | None) -> list[Manifest]:
        """The batches this run wrote or loaded (one read of each manifest; none at START)."""
        if result is None or not result.batch_ids:
            return []
        lake = self.ctx.table_lake(table.name)
        return [m for m in (_safe(lambda b=b: lake.read_manifest(b)) for b in result.batch_ids) if m is not None]


# ------------------------------------------------------------------ naming
def source_dataset(source: Any, table: TablePlan) -> tuple[str, str] | None:
    """(namespace, name) of the MySQL table: mysql://host:port, db.table (OpenLineage naming spec)."""
    if source is None or not source.host:
        return None
    db, _, bare = table.source_table.rpartition(".")
    db = db or source.database
    return f"mysql://{source.host}:{source.port}", f"{db}.{bare}" if db else bare


def target_dataset(target: Any, table: str) -> tuple[str, str] | None:
    """(namespace, name) of the target table: postgres://host:port db.schema.table,
    redshift://cluster.region:port db.schema.table, duckdb://path db.schema.table."""
    if target is None:
        return None
    if target.type == "duckdb":
        path = os.path.abspath(os.path.expanduser(target.path))
        return f"duckdb://{path}", f"{Path(path).stem}.{target.schema_}.{table}"
    name = f"{target.database}.{target.schema_}.{table}"
    if target.type == "redshift":
        labels = (target.host or "").split(".")
        if len(labels) >= 4 and labels[-3:] == ["redshift", "amazonaws", "com"]:
            return f"redshift://{labels[0]}.{labels[2]}:{target.port}", name  # cluster.id.region.redshift...
        return f"redshift://{target.host}:{target.port}", name
    return f"postgres://{target.host}:{target.port}", name


def lake_datasets(ctx: RunContext, table: str, manifest: Manifest) -> list[tuple[str, str]]:
    """The folders holding a batch's parts: s3://bucket + key prefix, or file + absolute path."""
    lake = ctx.table_lake(table)
    folders = dict.fromkeys(f.path.rpartition("/")[0] for f in manifest.files)
    out = []
    for folder in folders:
        uri = lake.uri(folder)
        if uri.startswith("s3://"):
            bucket, _, key = uri[5:].partition("/")
            out.append((f"s3://{bucket}", key))
        else:
            out.append(("file", uri))
    return out


def _schema(columns: list[Column] | None, kind: str) -> dict[str, Any]:
    """A schema facet: the MySQL types, the lake's Arrow types, or the target's SQL types."""
    if not columns:
        return {}
    from openlineage.client.facet_v2 import schema_dataset

    typer = _typer(kind)
    fields = [schema_dataset.SchemaDatasetFacetFields(name=c.name, type=typer(c)) for c in columns]
    return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}


def _typer(kind: str) -> Callable[[Column], str]:
    if kind == "mysql":
        return lambda c: c.mysql_type
    if kind == "lake":
        return lambda c: c.arrow_type
    from lakeshift.load import dialects

    dialect = {"postgres": dialects.PostgresTypes, "postgresql": dialects.PostgresTypes,
               "redshift": dialects.RedshiftTypes, "duckdb": dialects.DuckDBTypes}.get(kind)
    if dialect is None:
        return lambda c: c.mysql_type
    d = dialect()
    return lambda c: _safe(lambda: d.render(d.target_type(c))) or c.mysql_type


def _safe(fn: Callable[[], R]) -> R | None:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - lineage is best effort: a missing detail is left out
        return None


def _short(exc: BaseException) -> str:
    text = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return text if len(text) <= 200 else text[:197] + "..."
