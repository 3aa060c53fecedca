"""The history keys (scd_type, business_key, scd_columns) in the config: one
line naming the file, the table and the fix for each mistake; show-pipeline
shows the history settings. (Columns unknown to the source: tests/test_scd2_e2e.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from kit.cli import one_error_line
from test_config_errors import CONNECTIONS, pipeline

DIM = {"cdc_strategy": "full_sync", "table_type": "dimension", "scd_type": "type_2"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({**DIM}, "tables.customers: scd_type: type_2 needs business_key: the column(s) that identify the entity, "
                  "e.g. business_key: [customer_id]"),
        ({**DIM, "table_type": "fact", "business_key": ["id"]},
         "tables.customers: scd_type: type_2 keeps the history of a dimension; set table_type: dimension"),
        ({"cdc_strategy": "full_sync", "business_key": ["id"]},
         "tables.customers: business_key only apply with scd_type: type_2; add it, or remove them"),
        ({**DIM, "business_key": ["id"], "scd_columns": ["id", "name"]},
         "tables.customers: scd_columns ['id'] are in business_key; a key column never changes a version"),
        ({**DIM, "scd_type": "type_1", "business_key": ["id"]}, "tables.customers.scd_type:"),
    ],
)
def test_history_key_mistakes_are_one_line(cli, make_config, table: dict[str, Any], message: str) -> None:
    root = make_config({"connections.yml": CONNECTIONS,
                        "pipelines/sales_pipeline.yml": pipeline({"customers": table})})
    line = one_error_line(cli("config", "validate", config_dir=root))
    assert line.startswith("pipelines/sales_pipeline.yml: ") and message in line, line


def test_show_pipeline_shows_the_history_settings(cli, make_config) -> None:
    table = {**DIM, "business_key": ["region", "code"], "scd_columns": ["name", "tier"]}
    root = make_config({"connections.yml": CONNECTIONS,
                        "pipelines/sales_pipeline.yml": pipeline({"customers": table})})
    out = cli("config", "show-pipeline", "sales_pipeline", config_dir=root)
    assert out.exit_code == 0, out.output
    assert ("customers: history (SCD2) on business_key region, code: a change in name, tier opens a version"
            in " ".join(out.stdout.split()))
