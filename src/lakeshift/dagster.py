"""`lakeshift[dagster]`: one Dagster asset per table of a pipeline, straight from the YAML.

    from dagster import Definitions
    from lakeshift.dagster import lakeshift_assets
    defs = Definitions(assets=lakeshift_assets("config", "shop"))

Each asset runs `lakeshift sync pipeline -p P -t TABLE` in its step's process
(engine/sync_api.py), so every guarantee of the CLI holds (docs/scale-out.md).
Building the definitions reads the YAML only: no database is touched at import."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    import dagster as dg
except ImportError as exc:  # pragma: no cover - the message is the fix
    raise ImportError("lakeshift.dagster needs Dagster: pip install 'lakeshift[dagster]'") from exc

from lakeshift.engine.sync_api import PipelineGraph, TableNode, outcome_error, pipeline_graph, sync_tables

SOURCE_TAG = "lakeshift/source"  # op tag: the source connection (for tag_concurrency_limits)


def pool_name(source: str) -> str:
    """The Dagster pool of a source connection: set its limit to the source's max_connections
    (`dagster instance concurrency set lakeshift-SOURCE N`) to cap it across runs."""
    return f"lakeshift-{source}"


def lakeshift_assets(config_dir: str | Path | None, pipeline: str, env: str | None = None, *,
                     key_prefix: Sequence[str] = (), source_key_prefix: Sequence[str] | None = None,
                     group_name: str | None = None, retries: int = 0,
                     retry_delay_seconds: float | None = None) -> list[Any]:
    """Dagster definitions for `pipeline`: an asset per table, keyed [*key_prefix, pipeline, table],
    depending on the tables of its `depends_on` and on an external asset for its MySQL table
    ([*source_key_prefix, source, table]; default prefix: key_prefix). `config_dir` and `env` are
    what `--config-dir` and `--env` are to the CLI; the step re-reads the folder when it runs."""
    graph = pipeline_graph(config_dir, pipeline, env)
    prefix = list(key_prefix)
    src_prefix = prefix if source_key_prefix is None else list(source_key_prefix)
    group = group_name or graph.key
    retry = dg.RetryPolicy(max_retries=retries, delay=retry_delay_seconds) if retries else None
    root = str(Path(config_dir).resolve()) if config_dir is not None else None
    defs: list[Any] = []
    for t in graph.tables:
        source_key = dg.AssetKey([*src_prefix, graph.source, *t.source_table.split(".")])
        defs.append(dg.AssetSpec(source_key, group_name=f"{group}_source", kinds={"mysql"},
                                 description=f"MySQL table {t.source_table} of source {graph.source}"))
        deps = [source_key, *(dg.AssetKey([*prefix, graph.key, d]) for d in t.depends_on)]
        defs.append(_table_asset(graph, t, root, env, dg.AssetKey([*prefix, graph.key, t.name]), deps, group, retry))
    return defs


def source_concurrency_limits(graph_or_config: PipelineGraph | str | Path | None, pipeline: str | None = None,
                              env: str | None = None) -> list[dict[str, Any]]:
    """`tag_concurrency_limits` for the multiprocess executor: at most the source's
    max_connections table steps on one source in a run (pools cap it across runs)."""
    graph = graph_or_config if isinstance(graph_or_config, PipelineGraph) else pipeline_graph(
        graph_or_config, pipeline or "", env)
    return [{"key": SOURCE_TAG, "value": graph.source, "limit": graph.source_max_connections}]


def _table_asset(graph: PipelineGraph, table: TableNode, root: str | None, env: str | None, key: Any,
                 deps: list[Any], group: str, retry: Any) -> Any:
    @dg.asset(key=key, deps=deps, group_name=group, pool=pool_name(graph.source), retry_policy=retry,
              op_tags={SOURCE_TAG: graph.source}, kinds={"lakeshift", graph.target_type},
              description=f"{graph.key}.{table.name}: {table.source_table} -> {graph.target}.{table.target_table} "
                          f"({table.cdc_strategy})",
              metadata={"lakeshift/pipeline": graph.key, "lakeshift/table": table.name,
                        "lakeshift/target_table": table.target_table})
    def _sync(context):  # type: ignore[no-untyped-def]  # no annotations: Dagster reads them as strings here
        report = sync_tables(root, graph.key, [table.name], env)
        (outcome,) = report.outcomes
        if outcome.status != "ok" or outcome.result is None:
            # lakeshift's one line; a retry (RetryPolicy) is allowed: the lake and the target resume.
            raise dg.Failure(description=outcome_error(outcome))
        r = outcome.result
        for note in r.notes:
            context.log.info(f"{table.name}: {note}")
        return dg.MaterializeResult(metadata={
            "rows_extracted": r.rows_extracted, "rows_loaded": r.rows_loaded, "rows_deleted": r.rows_deleted,
            "batches_written": dg.MetadataValue.json(r.batches_written_ids),
            "batches_loaded": dg.MetadataValue.json(r.batches_loaded_ids),
            "watermark": dg.MetadataValue.json(r.watermark) if r.watermark else "unchanged",
            "seconds": round(r.seconds, 3), "notes": "; ".join(r.notes),
        })

    return _sync


__all__ = ["lakeshift_assets", "source_concurrency_limits", "pool_name", "SOURCE_TAG"]
