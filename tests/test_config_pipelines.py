"""Pipeline validation: CDC columns per strategy, dependencies and cycles,
connection names of the right kind, and the config commands that show them."""

from __future__ import annotations

from typing import Any

import pytest
from kit.cli import one_error_line

from lakeshift.config import load_config
from lakeshift.config.validate import dependency_levels, find_cycle, pipeline_errors

CONNECTIONS = {
    "connections": {
        "sources": {"sales_mysql": {"host": "db", "database": "sales", "username": "u"}},
        "targets": {"reporting": {"type": "postgres", "host": "pg", "database": "dw", "username": "u"},
                    "duck": {"type": "duckdb", "path": "./w.duckdb"}},
        "storage": {"lake": {"type": "local", "path": "./lake"}},
    }
}


def files(tables: dict[str, Any], **section: Any) -> dict[str, Any]:
    body = {"pipeline": {"source": "sales_mysql", "target": "reporting", **section}, "tables": tables}
    return {"connections.yml": CONNECTIONS, "pipelines/sales_pipeline.yml": body}


def full(**extra: Any) -> dict[str, Any]:
    return {"cdc_strategy": "full_sync", **extra}


# ---------------------------------------------------------------- CDC columns


@pytest.mark.parametrize(
    ("table", "missing"),
    [
        ({"cdc_strategy": "hybrid", "cdc_id_column": "id"}, "cdc_timestamp_column"),
        ({"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts"}, "cdc_id_column"),
        ({"cdc_strategy": "timestamp_only", "cdc_id_column": "id"}, "cdc_timestamp_column"),
        ({"cdc_strategy": "id_only", "cdc_timestamp_column": "ts"}, "cdc_id_column"),
    ],
    ids=["hybrid-ts", "hybrid-id", "timestamp_only", "id_only"],
)
def test_required_cdc_columns(cli, make_config, table: dict[str, Any], missing: str) -> None:
    root = make_config(files({"orders": table}))
    assert one_error_line(cli("config", "validate-pipeline", "sales_pipeline", config_dir=root)) == (
        f"pipelines/sales_pipeline.yml: tables.orders.{missing}: required when cdc_strategy is "
        f"'{table['cdc_strategy']}'")


def test_cdc_strategy_defaults_to_hybrid_which_needs_both(cli, make_config) -> None:
    root = make_config(files({"orders": {}}))
    r = cli("config", "validate", config_dir=root)
    assert one_error_line(r) == ("pipelines/sales_pipeline.yml: tables.orders.cdc_timestamp_column: required when "
                                 "cdc_strategy is 'hybrid' (and 1 more problem(s), listed above)")
    assert r.stdout.splitlines() == [  # with the line of the table's key in the file
        "2 problem(s):",
        "  - pipelines/sales_pipeline.yml: tables.orders.cdc_timestamp_column: required when cdc_strategy is 'hybrid'"
        " (line 5)",
        "  - pipelines/sales_pipeline.yml: tables.orders.cdc_id_column: required when cdc_strategy is 'hybrid'"
        " (line 5)",
    ]


@pytest.mark.parametrize(
    "table",
    [
        {"cdc_strategy": "full_sync"},
        {"cdc_strategy": "id_only", "cdc_id_column": "id"},
        {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "ts"},
        {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "id"},
        {"cdc_strategy": "binlog"},
    ],
    ids=["full_sync", "id_only", "timestamp_only", "hybrid", "binlog"],
)
def test_valid_strategies(cli, make_config, table: dict[str, Any]) -> None:
    root = make_config(files({"orders": table}))
    r = cli("config", "validate-pipeline", "sales_pipeline", config_dir=root)
    assert r.exit_code == 0, r.output
    assert r.stdout == "Pipeline sales_pipeline is valid: 1 table(s)\n"


def test_cdc_columns_from_default_table_config(cli, make_config) -> None:
    defaults = {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "updated_at"}
    root = make_config(files({"orders": {}, "refunds": {"cdc_strategy": "id_only", "cdc_id_column": "refund_id"}},
                             default_table_config=defaults))
    assert cli("config", "validate", config_dir=root).exit_code == 0


# ---------------------------------------------------------------- dependencies


def test_depends_on_unknown_table(cli, make_config) -> None:
    root = make_config(files({"orders": full(depends_on=["custmers"]), "customers": full()}))
    assert one_error_line(cli("config", "validate-pipeline", "sales_pipeline", config_dir=root)) == (
        "pipelines/sales_pipeline.yml: tables.orders.depends_on: 'custmers' is not a table of this pipeline "
        "(tables: customers, orders)")


def test_two_table_cycle(cli, make_config) -> None:
    root = make_config(files({"a": full(depends_on=["b"]), "b": full(depends_on=["a"])}))
    assert one_error_line(cli("config", "validate-pipeline", "sales_pipeline", config_dir=root)) == (
        "pipelines/sales_pipeline.yml: dependency cycle: a -> b -> a")


def test_longer_cycle_path(cli, make_config) -> None:
    tables = {"customers": full(), "orders": full(depends_on=["customers", "order_items"]),
              "order_items": full(depends_on=["payments"]), "payments": full(depends_on=["orders"])}
    root = make_config(files(tables))
    assert one_error_line(cli("config", "validate", config_dir=root)) == (
        "pipelines/sales_pipeline.yml: dependency cycle: orders -> order_items -> payments -> orders")


def test_self_dependency(cli, make_config) -> None:
    root = make_config(files({"a": full(depends_on=["a"])}))
    assert one_error_line(cli("config", "validate", config_dir=root)) == (
        "pipelines/sales_pipeline.yml: tables.a.depends_on: a table cannot depend on itself")


def test_find_cycle_and_order(make_config) -> None:
    tables = {"order_items": full(depends_on=["orders"]), "orders": full(depends_on=["customers"]),
              "customers": full(), "audit": full(processing={"priority": "low"}),
              "products": full(processing={"priority": "high"})}
    cfg = load_config(make_config(files(tables)), environ={})
    p = cfg.pipeline("sales_pipeline")
    assert find_cycle(p) is None
    assert dependency_levels(p, list(p.tables)) == ["products", "customers", "audit", "orders", "order_items"]
    assert pipeline_errors(cfg, p) == []


# ---------------------------------------------------------------- connection names


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"source": "reporting"},
         "pipeline.source: 'reporting' is a target, not a source (sources in connections.yml: sales_mysql)"),
        ({"target": "sales_mysql"},
         "pipeline.target: 'sales_mysql' is a source, not a target (targets in connections.yml: duck, "
         "reporting)"),
        ({"target": "lake"},
         "pipeline.target: 'lake' is a storage, not a target (targets in connections.yml: duck, reporting)"),
        ({"source": "sales_mysq"},
         "pipeline.source: unknown source 'sales_mysq'; did you mean 'sales_mysql'? (sources in connections.yml: "
         "sales_mysql)"),
        ({"target": "warehouse"},
         "pipeline.target: unknown target 'warehouse' (targets in connections.yml: duck, reporting)"),
        ({"s3": {"storage": "lakes"}},
         "pipeline.s3.storage: unknown storage 'lakes'; did you mean 'lake'? (storage in connections.yml: default, "
         "lake)"),
        ({"s3": {"storage": "duck"}},
         "pipeline.s3.storage: 'duck' is a target, not a storage (storage in connections.yml: default, lake)"),
    ],
    ids=["target-as-source", "source-as-target", "storage-as-target", "typo-source", "unknown-target",
         "typo-storage", "target-as-storage"],
)
def test_connection_names(cli, make_config, section: dict[str, Any], message: str) -> None:
    root = make_config(files({"orders": full()}, **section))
    assert one_error_line(cli("config", "validate-pipeline", "sales_pipeline", config_dir=root)) == (
        f"pipelines/sales_pipeline.yml: {message}")


def test_undeclared_default_storage_is_a_local_lake(make_config) -> None:
    cfg = load_config(make_config(files({"orders": full()})), environ={})
    assert cfg.storage_for("default").path == "./lake"


def test_validate_reports_missing_literal_keys(cli, make_config) -> None:
    conns = {"connections": {"sources": {"s": {"database": "d", "username": "u"}}}}
    root = make_config({"connections.yml": conns})
    assert one_error_line(cli("config", "validate", config_dir=root)) == (
        "connections.yml: connections.sources.s.host: required key is missing")


# ---------------------------------------------------------------- list / show


def test_list_and_show_pipeline(cli, make_config) -> None:
    tables = {"customers": {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at",
                            "cdc_id_column": "customer_id", "target_name": "dim_customers", "table_type": "dimension"},
              "orders": full(depends_on=["customers"], lookback="10m")}
    root = make_config(files(tables, name="sales_to_reporting", description="Sales data"))
    r = cli("config", "list-pipelines", config_dir=root)
    assert r.exit_code == 0
    assert "sales_pipeline" in r.stdout and "sales_to_reporting" in r.stdout and "sales_mysql -> reporting" in r.stdout
    assert "default_legacy" in r.stdout  # the built-in v1.0 pipeline is always there
    r = cli("config", "show-pipeline", "sales_to_reporting", config_dir=root)  # by name as well as by file
    assert r.exit_code == 0
    out = r.stdout
    assert "Pipeline: sales_to_reporting (sales_pipeline)" in out
    assert "Source: sales_mysql   Target: reporting   Storage: default" in out
    assert "dim_customers" in out and "updated_at, customer_id" in out and "10m" in out


# ---------------------------------------------------------------- binlog


def test_binlog_server_ids_default_to_a_stable_number_per_pipeline_and_never_repeat(cli, make_config) -> None:
    from lakeshift.config.models import default_server_id

    assert default_server_id("sales") == default_server_id("sales") != default_server_id("sales2")
    assert 1_000_000 <= default_server_id("sales") < 2**31
    body = {"pipeline": {"source": "sales_mysql", "target": "reporting"}, "tables": {"o": {"cdc_strategy": "binlog"}}}
    other = {"pipeline": {"source": "sales_mysql", "target": "reporting", "binlog": {"server_id": 7}},
             "tables": {"o": {"cdc_strategy": "binlog"}}}
    root = make_config({"connections.yml": CONNECTIONS, "pipelines/a.yml": body, "pipelines/b.yml": other})
    config = load_config(root)
    assert config.pipeline("a").binlog_server_id == default_server_id("a")
    assert config.pipeline("b").pipeline.binlog.on_position_lost == "fail"
    assert pipeline_errors(config, config.pipeline("a")) == []
    body["pipeline"]["binlog"] = {"server_id": 7}
    root = make_config({"connections.yml": CONNECTIONS, "pipelines/a.yml": body, "pipelines/b.yml": other})
    message = one_error_line(cli("config", "validate-pipeline", "a", config_dir=root))
    assert message == ("pipelines/a.yml: pipeline.binlog.server_id: 7 is also the server_id of pipeline 'b'; "
                       "give each pipeline its own (e.g. server_id: 8)")


@pytest.mark.parametrize(("block", "key"), [({"on_position_lost": "skip"}, "on_position_lost"),
                                            ({"server_id": 0}, "server_id"), ({"serverid": 3}, "serverid")])
def test_a_bad_binlog_block_is_one_line(cli, make_config, block: dict[str, Any], key: str) -> None:
    root = make_config(files({"o": {"cdc_strategy": "binlog"}}, binlog=block))
    message = one_error_line(cli("config", "validate-pipeline", "sales_pipeline", config_dir=root))
    assert f"pipeline.binlog.{key}" in message, message
