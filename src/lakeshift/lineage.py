"""`lakeshift[openlineage]`: a START and a COMPLETE or FAIL OpenLineage run event
per table of a run. Inputs: the MySQL table and the table's folder in the lake;
output: the target table, with a schema facet (the columns of the batch) and a
row-count facet. Configured the standard OpenLineage way (OPENLINEAGE_URL,
OPENLINEAGE_CONFIG or openlineage.yml, any transport the client supports); off
when openlineage-python is not installed or nothing configures it. A failed emit
never fails a run: one warning line."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lakeshift import redact
from lakeshift.errors import one_line

if TYPE_CHECKING:
    from lakeshift.engine.plan import Plan, TablePlan

log = logging.getLogger("lakeshift.lineage")
PRODUCER = "https://github.com/lakeshift/lakeshift"
R = TypeVar("R")


def configured(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Something configures OpenLineage, and OPENLINEAGE_DISABLED is not true."""
    if environ.get("OPENLINEAGE_DISABLED", "").lower() == "true":
        return False
    if any(k in environ for k in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG")) or any(
            k.startswith("OPENLINEAGE__TRANSPORT") for k in environ):
        return True
    return Path("openlineage.yml").is_file() or (Path.home() / ".openlineage" / "openlineage.yml").is_file()


def open_lineage(plan: Plan) -> Lineage | None:
    """The run's emitter, or None (not installed, not configured, or the client cannot be made)."""
    if not configured():
        return None
    try:
        from openlineage.client import OpenLineageClient
    except ImportError:
        return None
    try:
        return Lineage(plan, OpenLineageClient())
    except Exception as exc:  # noqa: BLE001 - lineage never fails a run
        log.warning("lineage: OpenLineage client not usable, no events sent: %s", one_line(redact.redact(str(exc))))
        return None


class Lineage:
    def __init__(self, plan: Plan, client: Any) -> None:
        self.plan, self.client = plan, client
        p = plan.pipeline
        self.namespace = os.environ.get("OPENLINEAGE_NAMESPACE") or f"lakeshift/{p.key}"
        cfg = plan.config
        self.source = cfg.connection("sources", p.pipeline.source).model
        self.target = cfg.connection("targets", p.pipeline.target).model

    def track(self, table: TablePlan, lake_uri: Callable[[], str], run: Callable[[], R]) -> R:
        """Run one table between its START and its COMPLETE/FAIL events."""
        run_id = str(uuid.uuid4())
        self._emit("START", table, run_id, lake_uri)
        try:
            result = run()
        except BaseException as exc:
            self._emit("FAIL", table, run_id, lake_uri, error=exc)
            raise
        self._emit("COMPLETE", table, run_id, lake_uri, result=result)
        return result

    def _emit(self, state: str, table: TablePlan, run_id: str, lake_uri: Callable[[], str],
              result: Any = None, error: BaseException | None = None) -> None:
        try:
            self.client.emit(self._event(state, table, run_id, lake_uri(), result, error))
        except Exception as exc:  # noqa: BLE001 - a failed emit never fails a run
            log.warning("lineage: %s event of %s not sent: %s", state, table.name,
                        one_line(redact.redact(str(exc)))[:300])

    def _event(self, state: str, table: TablePlan, run_id: str, lake: str, result: Any,
               error: BaseException | None) -> Any:
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, output_statistics_output_dataset

        run_facets: dict[str, Any] = {}
        if error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=one_line(redact.redact(str(error) or type(error).__name__)), programmingLanguage="python")
        out_facets: dict[str, Any] = {}
        out_stats: dict[str, Any] = {}
        fields = self._fields(result)
        if fields:
            out_facets["schema"] = fields
        if result is not None:
            out_stats["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=int(result.rows_loaded))
        src_ns, src_name = self._source_dataset(table)
        lake_ns, lake_name = _split_uri(lake)
        tgt_ns, tgt_name = self._target_dataset(table)
        return RunEvent(
            eventType=getattr(RunState, state), eventTime=datetime.now(timezone.utc).isoformat(),
            run=Run(runId=run_id, facets=run_facets),
            job=Job(namespace=self.namespace, name=f"{self.plan.pipeline.key}.{table.name}"),
            producer=PRODUCER,
            inputs=[InputDataset(namespace=src_ns, name=src_name), InputDataset(namespace=lake_ns, name=lake_name)],
            outputs=[OutputDataset(namespace=tgt_ns, name=tgt_name, facets=out_facets,
                                   outputFacets=out_stats)],
        )

    def _fields(self, result: Any) -> Any:
        """The schema facet from the manifest of the last batch this run wrote (columns as MySQL types)."""
        if result is None or not result.batches_written_ids:
            return None
        from openlineage.client.facet_v2 import schema_dataset

        try:
            from lakeshift.lake import Lake, TableLake

            p = self.plan.pipeline
            lake = Lake.from_config(self.plan.config.storage_for(p.pipeline.s3.storage))
            manifest = TableLake(lake, p.isolation_prefix, result.table).read_manifest(result.batches_written_ids[-1])
        except Exception:  # noqa: BLE001 - no facet rather than no event
            return None
        return schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.mysql_type) for c in manifest.columns])

    def _source_dataset(self, table: TablePlan) -> tuple[str, str]:
        s = self.source
        name = table.source_table if "." in table.source_table else f"{getattr(s, 'database', '')}.{table.source_table}"
        return f"mysql://{getattr(s, 'host', '')}:{getattr(s, 'port', 3306)}", name

    def _target_dataset(self, table: TablePlan) -> tuple[str, str]:
        t = self.target
        kind = str(getattr(t, "type", "target"))
        schema = getattr(t, "schema_", None) or "public"  # the models call the `schema` key schema_
        if kind == "duckdb":
            return f"duckdb://{getattr(t, 'path', '')}", f"{schema}.{table.target_table}"
        return (f"{kind}://{getattr(t, 'host', '')}:{getattr(t, 'port', '')}",
                f"{getattr(t, 'database', '')}.{schema}.{table.target_table}")


def _split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/a/b -> ('s3://bucket', 'a/b'); a local path -> ('file', path)."""
    if "://" in uri:
        scheme, rest = uri.split("://", 1)
        bucket, _, path = rest.partition("/")
        return f"{scheme}://{bucket}", path
    return "file", uri
