"""One Airflow DAG per pipeline of a lakeshift config folder: drop this file into
Airflow's dags folder and point LAKESHIFT_CONFIG_DIR at the folder (default: the
`config` folder next to this file's parent, i.e. examples/config). Parsing it reads
the YAML only; no database is opened until a task runs."""

from __future__ import annotations

import os
from pathlib import Path

from lakeshift.airflow import lakeshift_dag
from lakeshift.engine.sync_api import load

CONFIG_DIR = os.environ.get("LAKESHIFT_CONFIG_DIR") or str(Path(__file__).resolve().parent.parent / "config")
ENV = os.environ.get("LAKESHIFT_ENV") or None

for _key, _pipeline in load(CONFIG_DIR, ENV).pipelines.items():
    if _pipeline.tables:  # the v1.0 `default` pipeline declares none: no DAG for it
        globals()[f"lakeshift_{_key}"] = lakeshift_dag(CONFIG_DIR, _key, ENV)
