"""`lakeshift[airflow]`: an Airflow DAG per pipeline, one task per table, straight from the YAML.

    from lakeshift.airflow import lakeshift_dag
    dag = lakeshift_dag("/opt/lakeshift/config", "shop", schedule="@hourly")

Each task runs `lakeshift sync pipeline -p P -t TABLE` in the task's process
(engine/sync_api.py), so every guarantee of the CLI holds (docs/scale-out.md).
Building the DAG reads the YAML only: parsing the DAG file opens no connection.
Airflow 3 (`airflow.sdk`) first, Airflow 2 imports otherwise."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    try:
        from airflow import DAG  # type: ignore[no-redef]
    except ImportError as exc:  # pragma: no cover - the message is the fix
        raise ImportError("lakeshift.airflow needs Airflow: pip install 'lakeshift[airflow]'") from exc
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2 without the standard provider
    from airflow.operators.python import PythonOperator  # type: ignore[no-redef]

from lakeshift.engine.sync_api import outcome_error, pipeline_graph, sync_tables


def pool_name(source: str) -> str:
    """The Airflow pool of a source connection; create it with the source's
    max_connections as slots: `airflow pools set lakeshift-SOURCE N "lakeshift source SOURCE"`."""
    return f"lakeshift-{source}"


def sync_table(config_dir: str | None, pipeline: str, table: str, env: str | None = None) -> dict[str, Any]:
    """One task: `lakeshift sync pipeline -p PIPELINE -t TABLE`. Returns the table's
    result (pushed to XCom); a failed table raises with lakeshift's one-line error."""
    from lakeshift.engine.sync_api import TableFailed

    report = sync_tables(config_dir, pipeline, [table], env)
    (outcome,) = report.outcomes
    if outcome.status != "ok" or outcome.result is None:
        raise TableFailed(outcome_error(outcome))
    r = outcome.result
    return {"rows_extracted": r.rows_extracted, "rows_loaded": r.rows_loaded, "rows_deleted": r.rows_deleted,
            "batches_written": r.batches_written_ids, "batches_loaded": r.batches_loaded_ids,
            "watermark": r.watermark, "seconds": round(r.seconds, 3), "notes": r.notes}


def lakeshift_dag(config_dir: str | Path | None, pipeline: str, env: str | None = None, *,
                  dag_id: str | None = None, retries: int = 2, retry_delay: timedelta = timedelta(minutes=1),
                  use_pool: bool = True, **dag_kwargs: Any) -> Any:
    """A DAG `lakeshift_<pipeline>` (or `dag_id`): task id = table name, edges from
    `depends_on`, every task in the pool of its source (`pool_name`) and retried
    `retries` times (a retry resumes from the lake and the target). Airflow does not
    schedule a task whose pool does not exist: create it, or pass `use_pool=False`. `dag_kwargs` go
    to `DAG(...)` (schedule, start_date, tags, ...); `default_args` merge."""
    graph = pipeline_graph(config_dir, pipeline, env)
    root = str(Path(config_dir).resolve()) if config_dir is not None else None
    default_args = {"retries": retries, "retry_delay": retry_delay, **dag_kwargs.pop("default_args", {})}
    dag_kwargs.setdefault("schedule", None)
    dag_kwargs.setdefault("catchup", False)
    dag_kwargs.setdefault("tags", ["lakeshift", graph.key])
    dag_kwargs.setdefault("description", f"lakeshift pipeline {graph.key}: {graph.source} -> {graph.target}")
    with DAG(dag_id or f"lakeshift_{graph.key}", default_args=default_args, **dag_kwargs) as dag:
        pool = {"pool": pool_name(graph.source)} if use_pool else {}
        tasks = {t.name: PythonOperator(task_id=t.name, python_callable=sync_table, **pool,
                                        op_kwargs={"config_dir": root, "pipeline": graph.key, "table": t.name,
                                                   "env": env})
                 for t in graph.tables}
        for t in graph.tables:
            for dep in t.depends_on:
                tasks[dep] >> tasks[t.name]
    return dag


__all__ = ["lakeshift_dag", "sync_table", "pool_name"]
