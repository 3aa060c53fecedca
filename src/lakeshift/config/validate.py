"""Cross-reference checks of a pipeline, and its dependency order."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

from lakeshift.config.loader import Config
from lakeshift.config.models import PipelineConfig, TableConfig
from lakeshift.errors import ConfigError, LakeshiftError

_NEEDS = {
    "hybrid": ("cdc_timestamp_column", "cdc_id_column"),
    "timestamp_only": ("cdc_timestamp_column",),
    "id_only": ("cdc_id_column",),
    "full_sync": (),
    "binlog": (),
}


def table_errors(name: str, table: TableConfig, display: str) -> list[str]:
    errors = []
    for key in _NEEDS[table.cdc_strategy]:
        if not getattr(table, key):
            errors.append(
                f"{display}: tables.{name}.{key}: required when cdc_strategy is '{table.cdc_strategy}'"
            )
    return errors


def find_cycle(pipeline: PipelineConfig) -> list[str] | None:
    """A dependency cycle as a path (a -> b -> a), or None."""
    graph = {name: [d for d in t.depends_on if d in pipeline.tables] for name, t in pipeline.tables.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def pipeline_display(config: Config, pipeline: PipelineConfig) -> str:
    """The file a pipeline came from, as error messages name it."""
    for ext in ("yml", "yaml"):
        if (config.root / "pipelines" / f"{pipeline.key}.{ext}").exists():
            return f"pipelines/{pipeline.key}.{ext}"
    return "built-in default pipeline" if pipeline.key == "default" else f"pipelines/{pipeline.key}.yml"


def pipeline_errors(config: Config, pipeline: PipelineConfig) -> list[str]:
    """Every problem found, each one line. Empty means valid."""
    display = pipeline_display(config, pipeline)
    errors: list[str] = []
    for kind, name, key in (
        ("sources", pipeline.pipeline.source, "source"),
        ("targets", pipeline.pipeline.target, "target"),
        ("storage", pipeline.pipeline.s3.storage, "s3.storage"),
    ):
        try:
            config.connection(kind, name)
        except LakeshiftError as exc:
            errors.append(f"{display}: pipeline.{key}: {exc}")
    errors.extend(_stage_errors(config, pipeline, display))
    for name, table in pipeline.tables.items():
        errors.extend(table_errors(name, table, display))
        for dep in table.depends_on:
            if dep not in pipeline.tables:
                errors.append(
                    f"{display}: tables.{name}.depends_on: '{dep}' is not a table of this pipeline "
                    f"(tables: {', '.join(sorted(pipeline.tables))})"
                )
            if dep == name:
                errors.append(f"{display}: tables.{name}.depends_on: a table cannot depend on itself")
    cycle = find_cycle(pipeline)
    if cycle and len(cycle) > 2:
        errors.append(f"{display}: dependency cycle: {' -> '.join(cycle)}")
    errors.extend(_server_id_errors(config, pipeline, display))
    return errors


def _server_id_errors(config: Config, pipeline: PipelineConfig, display: str) -> list[str]:
    """Two pipelines reading the binlog of one server under the same replica id would
    make the server drop one connection for the other: every id is unique."""
    if not any(t.cdc_strategy == "binlog" for t in pipeline.tables.values()):
        return []
    mine = pipeline.binlog_server_id
    for other in config.pipelines.values():
        if other.key == pipeline.key or not any(t.cdc_strategy == "binlog" for t in other.tables.values()):
            continue
        if other.binlog_server_id == mine:
            return [f"{display}: pipeline.binlog.server_id: {mine} is also the server_id of pipeline "
                    f"'{other.key}'; give each pipeline its own (e.g. server_id: {mine + 1})"]
    return []


def _stage_errors(config: Config, pipeline: PipelineConfig, display: str) -> list[str]:
    """Redshift COPY reads Parquet from S3 only: a Redshift target needs an S3 lake."""
    target = config.targets.get(pipeline.pipeline.target)
    storage = config.storage.get(pipeline.pipeline.s3.storage)
    if target is None or storage is None or not target.usable:
        return []
    if getattr(target.model, "type", None) == "redshift" and getattr(storage.model, "type", None) == "local":
        return [f"{display}: pipeline.s3.storage: Redshift target '{pipeline.pipeline.target}' loads with COPY "
                f"from S3, but storage '{pipeline.pipeline.s3.storage}' is a local folder; "
                "declare an s3 storage under connections.storage and name it here"]
    return []


def check_pipeline(config: Config, pipeline: PipelineConfig) -> None:
    errors = pipeline_errors(config, pipeline)
    if errors:
        more = f" (and {len(errors) - 1} more problem(s); run `lakeshift config validate`)" if len(errors) > 1 else ""
        raise ConfigError(errors[0] + more)


def dependency_levels(pipeline: PipelineConfig, names: list[str]) -> list[str]:
    """`names` in dependency order (dependencies first); ties keep priority then config order."""
    chosen = set(names)
    order = {n: i for i, n in enumerate(pipeline.tables)}
    prio = {"high": 0, "medium": 1, "low": 2}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for n in names:
        sorter.add(n, *[d for d in pipeline.tables[n].depends_on if d in chosen])
    try:
        sorter.prepare()
    except CycleError as exc:
        raise ConfigError(f"dependency cycle: {' -> '.join(exc.args[1])}") from None
    result: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: (prio[pipeline.tables[n].processing.priority], order.get(n, 0)))
        result.extend(ready)
        sorter.done(*ready)
    return result
