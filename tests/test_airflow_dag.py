"""lakeshift[airflow]: the example DAG file (examples/dags/lakeshift.py) parses
with no DagBag errors and no database, one DAG per pipeline whose task graph is
the pipeline's `depends_on`; `dag.test()` runs a pipeline end to end into
PostgreSQL with target == source, and a failing table's task raises
lakeshift's one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

DAG_FILE = Path(__file__).resolve().parent.parent / "examples" / "dags" / "lakeshift.py"
EXAMPLES = DAG_FILE.parent.parent / "config"
# Before Airflow is imported: its home, database and dags folder (the example DAG file) in a temp folder.
_HOME = Path(os.environ.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="ls_airflow_"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
(_HOME / "dags").mkdir(parents=True, exist_ok=True)
shutil.copy(DAG_FILE, _HOME / "dags" / "lakeshift.py")
if os.environ.get("LAKESHIFT_TEST_EXTRAS"):
    import airflow  # noqa: F401  # scripts/test.sh's extras stage: never skipped there
airflow = pytest.importorskip("airflow")

from kit.lake import local_storage  # noqa: E402
from kit.targets import pg_target  # noqa: E402
from lakeshift.airflow import lakeshift_dag, pool_name, sync_table  # noqa: E402
from lakeshift.engine.sync_api import TableFailed  # noqa: E402
from orch_kit import DEPS, assert_all_mirrored, five_tables  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """Airflow's metadata database (SQLite in AIRFLOW_HOME), made once for the module."""
    out = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]


def graph(dag: Any) -> dict[str, list[str]]:
    return {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}


def test_the_example_dag_file_parses_with_no_errors_and_no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag

    monkeypatch.setenv("LAKESHIFT_CONFIG_DIR", str(EXAMPLES))  # hosts that do not resolve, secrets unset
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    from lakeshift.engine.sync_api import pipeline_graph

    assert set(bag.dag_ids) == {"lakeshift_sales_pipeline", "lakeshift_analytics_pipeline"}
    for key in ("sales_pipeline", "analytics_pipeline"):
        dag = bag.dags[f"lakeshift_{key}"]  # not get_dag: on Airflow 3 it asks the metadata database
        g = pipeline_graph(EXAMPLES, key)
        assert graph(dag) == {t.name: sorted(t.depends_on) for t in g.tables}
        assert {t.pool for t in dag.tasks} == {pool_name(g.source)} and all(t.retries == 2 for t in dag.tasks)


def test_dag_test_runs_the_pipeline_end_to_end(airflow_db: None, mysql: Any, mysql_db: str, tmp_path: Path,
                                               pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    target = pg_target(pg_schema)
    storage = local_storage(tmp_path / "lake")
    config = five_tables(mysql, mysql_db, tmp_path / "config", target, storage)
    monkeypatch.setenv("LAKESHIFT_CONFIG_DIR", str(config))  # the example DAG file, on the test's config
    dag = lakeshift_dag(config, "p1", retries=0)
    assert graph(dag) == {k: sorted(v) for k, v in DEPS.items()}
    run = dag.test()
    assert str(run.state) in ("success", "DagRunState.SUCCESS"), run.state
    assert_all_mirrored(target, mysql_db, storage)

    with mysql.cursor() as cur:  # a failing table: its task raises lakeshift's one line (no second dag.test:
        cur.execute("DROP TABLE c")  # Airflow's own upstream_failed does the rest, and it costs CI minutes)
    with pytest.raises(TableFailed) as err:
        sync_table(str(config), "p1", "c")
    assert str(err.value).startswith("c: ") and "\n" not in str(err.value) and "c does not exist" in str(err.value)
