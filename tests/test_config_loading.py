"""Loading: variable substitution, unusable connections, environments,
table overrides and their merge order, `.env`, and the config folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.cli import one_error_line

from lakeshift.config import load_config
from lakeshift.config.envsubst import substitute
from lakeshift.errors import ConfigError, MissingVariableError


@pytest.fixture(autouse=True)
def restore_environ() -> Iterator[None]:
    """`.env` loading writes into os.environ: put it back after each test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def src(**extra: Any) -> dict[str, Any]:
    return {"type": "mysql", "host": "db", "database": "sales", "username": "u", **extra}


def tgt(**extra: Any) -> dict[str, Any]:
    return {"type": "postgres", "host": "pg", "database": "dw", "username": "u", **extra}


def connections(sources: dict | None = None, targets: dict | None = None, storage: dict | None = None) -> dict:
    return {"connections": {"sources": sources or {"s": src()}, "targets": targets or {"t": tgt()},
                            "storage": storage or {}}}


# ---------------------------------------------------------------- substitution


def test_substitute_forms() -> None:
    env = {"HOST": "db.example.com", "EMPTY": ""}
    data = {"a": "${HOST}", "b": "${NOPE:-fallback}", "c": "${EMPTY:-used when empty}", "d": "pa$$word",
            "e": "jdbc://${HOST}:${PORT:-3306}/x", "f": 5, "g": ["${HOST}"], "h": "${EMPTY}", "i": "${NOPE:-}"}
    result, missing = substitute(data, env)
    assert result == {"a": "db.example.com", "b": "fallback", "c": "used when empty", "d": "pa$word",
                      "e": "jdbc://db.example.com:3306/x", "f": 5, "g": ["db.example.com"], "h": "", "i": ""}
    assert missing == {}


def test_substitute_missing_records_path() -> None:
    result, missing = substitute({"x": {"host": "${NOPE}", "list": ["ok", "${ALSO_NOPE}"]}}, {})
    assert result == {"x": {"host": None, "list": ["ok", None]}}
    assert missing == {("x", "host"): "NOPE", ("x", "list", "1"): "ALSO_NOPE"}


def test_substitution_cannot_change_yaml_structure(make_config) -> None:
    root = make_config({"connections.yml": connections({"s": src(host="${EVIL}")})})
    cfg = load_config(root, environ={"EVIL": "x\n  port: 1\nsources: {}"})
    assert cfg.source("s").host == "x\n  port: 1\nsources: {}"
    assert cfg.source("s").port == 3306


def test_variables_in_every_file(make_config) -> None:
    root = make_config({
        "connections.yml": {**connections({"s": src(host="${DB_HOST}", port="${DB_PORT:-3307}")}),
                            "connection_settings": {"default_timeout": "${TIMEOUT:-12}"}},
        "pipelines/p.yml": {"pipeline": {"source": "s", "target": "${TARGET_NAME:-t}"},
                            "tables": {"orders": {"cdc_strategy": "full_sync", "target_name": "${ORDERS_TABLE}"}}},
        "tables/orders.yml": {"processing": {"batch_size": "${ORDERS_BATCH:-777}"}},
    })
    cfg = load_config(root, environ={"DB_HOST": "mysql.internal", "ORDERS_TABLE": "fact_orders"})
    assert (cfg.source("s").host, cfg.source("s").port, cfg.settings.default_timeout) == ("mysql.internal", 3307, 12)
    orders = cfg.pipeline("p").tables["orders"]
    assert (cfg.pipeline("p").pipeline.target, orders.target_name, orders.processing.batch_size) == \
        ("t", "fact_orders", 777)


# ---------------------------------------------------------------- unset variables


def test_missing_variable_only_makes_that_connection_unusable(cli, make_config) -> None:
    root = make_config({
        "connections.yml": connections(
            {"sales": src(username="${SALES_USER}", password="${SALES_PASS}"), "ok": src()},
            {"rs": {"type": "redshift", "host": "rs", "database": "dw", "username": "u",
                    "ssh_tunnel": {"enabled": True, "host": "${BASTION_HOST}", "username": "ec2-user"}}}),
        "pipelines/p.yml": {"pipeline": {"source": "sales", "target": "rs"}},
    })
    env = {"SALES_USER": None, "SALES_PASS": None, "BASTION_HOST": None}
    r = cli("config", "validate", config_dir=root, env=env)
    assert r.exit_code == 0, r.output
    assert "not usable until its variables are set: sources.sales (needs SALES_PASS, SALES_USER)" in r.stdout
    assert "not usable until its variables are set: targets.rs (needs BASTION_HOST)" in r.stdout
    r = cli("connections", "list", config_dir=root, env=env)
    assert r.exit_code == 0
    assert "not usable: needs $SALES_PASS, $SALES_USER" in r.stdout
    cfg = load_config(root, environ={})
    assert cfg.source("ok").host == "db"
    with pytest.raises(MissingVariableError) as err:
        cfg.source("sales")
    assert str(err.value) == ("connections.yml: connections.sources.sales.username uses ${SALES_USER}, which is not "
                              "set; set SALES_USER in the environment or in .env")
    with pytest.raises(MissingVariableError) as err:
        cfg.target("rs")
    assert str(err.value) == ("connections.yml: connections.targets.rs.ssh_tunnel.host uses ${BASTION_HOST}, which "
                              "is not set; set BASTION_HOST in the environment or in .env")


def test_using_unusable_connection_fails_in_one_line(cli, make_config) -> None:
    root = make_config({"connections.yml": connections({"sales": src(port="${SALES_PORT}")})})
    assert one_error_line(cli("connections", "test", "sales", config_dir=root, env={"SALES_PORT": None})) == (
        "connections.yml: connections.sources.sales.port uses ${SALES_PORT}, which is not set; "
        "set SALES_PORT in the environment or in .env")


def test_missing_variable_outside_connections_is_an_error(cli, make_config) -> None:
    root = make_config({"connections.yml": connections(),
                        "pipelines/p.yml": {"pipeline": {"source": "${SRC_NAME}", "target": "t"}}})
    assert one_error_line(cli("config", "validate", config_dir=root, env={"SRC_NAME": None})) == (
        "pipelines/p.yml: pipeline.source uses ${SRC_NAME}, which is not set; "
        "set SRC_NAME in the environment or in .env")


def test_default_fills_unset_variable(make_config) -> None:
    root = make_config({"connections.yml": connections({"s": src(host="${SALES_HOST:-127.0.0.1}")})})
    assert load_config(root, environ={}).source("s").host == "127.0.0.1"
    assert load_config(root, environ={"SALES_HOST": "db2"}).source("s").host == "db2"


# ---------------------------------------------------------------- environments


ENV_FILES = {
    "connections.yml": {**connections({"sales": src(host="prod-db", connection_pool={"max_connections": 10})},
                                      {"t": tgt(), "dev_t": tgt(host="localhost")}),
                        "connection_settings": {"default_timeout": 30}},
    "pipelines/sales.yml": {
        "pipeline": {"source": "sales", "target": "t", "processing": {"batch_size": 5000}},
        "tables": {"orders": {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id",
                              "processing": {"batch_size": 100, "priority": "high"}}},
    },
    "environments/development.yml": {
        "connections": {"sources": {"sales": {"host": "localhost", "database": "sales_dev"}}},
        "connection_settings": {"default_timeout": 5},
        "pipelines": {"sales": {"pipeline": {"target": "dev_t"}}},
        "tables": {"orders": {"processing": {"batch_size": 10}}},
    },
    "environments/production.yml": {"pipeline": {"processing": {"strategy": "parallel"}}},
}


@pytest.mark.parametrize("how", ["option", "LAKESHIFT_ENV"])
def test_environment_deep_merge(cli, make_config, how: str) -> None:
    root = make_config(ENV_FILES)
    if how == "option":
        r = cli("--env", "development", "connections", "info", "sales", config_dir=root, env={"LAKESHIFT_ENV": None})
    else:
        r = cli("connections", "info", "sales", config_dir=root, env={"LAKESHIFT_ENV": "development"})
    assert r.exit_code == 0, r.output
    assert "host:        localhost" in r.stdout and "database:    sales_dev" in r.stdout
    assert "username:    u" in r.stdout  # untouched keys stay
    assert "pool:        min 1, max 10" in r.stdout  # nested mapping kept
    assert "timeouts:    connect 5s" in r.stdout


def test_environment_pipeline_and_table_overrides(make_config) -> None:
    root = make_config(ENV_FILES)
    base = load_config(root, environ={})
    dev = load_config(root, "development", environ={})
    prod = load_config(root, environ={"LAKESHIFT_ENV": "production"})
    assert (base.pipeline("sales").pipeline.target, dev.pipeline("sales").pipeline.target) == ("t", "dev_t")
    assert base.pipeline("sales").tables["orders"].processing.batch_size == 100
    assert dev.pipeline("sales").tables["orders"].processing.batch_size == 10
    assert dev.pipeline("sales").tables["orders"].processing.priority == "high"
    assert dev.env_name == "development" and prod.env_name == "production"
    # `pipeline:` in an environment applies to every pipeline, the built-in default too
    assert prod.pipeline("sales").pipeline.processing.strategy == "parallel"
    assert prod.pipeline("sales").pipeline.processing.batch_size == 5000
    assert prod.pipeline("default").pipeline.processing.strategy == "parallel"


def test_option_wins_over_lakeshift_env(make_config, cli) -> None:
    root = make_config(ENV_FILES)
    r = cli("--env", "development", "config", "validate", config_dir=root, env={"LAKESHIFT_ENV": "production"})
    assert r.exit_code == 0 and "; environment development" in r.stdout


def test_unknown_environment(cli, make_config) -> None:
    root = make_config(ENV_FILES)
    assert one_error_line(cli("--env", "prod", "config", "validate", config_dir=root)) == (
        "environment 'prod' has no file environments/prod.yml; known environments: development, production")
    assert one_error_line(cli("config", "validate", config_dir=root, env={"LAKESHIFT_ENV": "qa"})) == (
        "environment 'qa' has no file environments/qa.yml; known environments: development, production")


@pytest.mark.parametrize(
    ("env_file", "message"),
    [
        ({"pipelnes": {}}, "environments/qa.yml: pipelnes: unknown key; did you mean 'pipelines'?"),
        ({"pipelines": {"sales_pipeline": {"pipeline": {}}}},
         "environments/qa.yml: pipelines.sales_pipeline: no such pipeline (no pipelines/sales_pipeline.yml); "
         "pipelines: default, sales"),
        ({"pipelines": {"sales": {"tabels": {}}}},
         "environments/qa.yml: pipelines.sales.tabels: unknown key; did you mean 'tables'?"),
        ({"tables": {"orders": {"batch_size": 5}}},
         "environments/qa.yml: tables.orders.batch_size: unknown key; allowed keys: backup_strategy, business_key, "
         "cdc_id_column, cdc_strategy, cdc_timestamp_column, custom_sql, data_quality_checks, data_validation, "
         "depends_on, description, freshness, full_name, hard_deletes, lookback, max_delete_fraction, primary_key, "
         "processing, scd_columns, scd_type, table_type, target_name, tinyint1_as_boolean, validation, "
         "watermark_strategy, zero_dates"),
        ({"pipelines": {"sales": {"tables": {"refunds": {"cdc_strategy": "full_sync"}}}}},
         "pipelines/sales.yml: the environment overrides table 'refunds', which this pipeline does not declare "
         "(tables: orders)"),
        ({"connections": {"sources": {"sales": {"port": "x"}}}},
         "connections.yml: connections.sources.sales.port: must be an integer (got 'x')"),
    ],
    ids=["top", "unknown-pipeline", "pipeline-key", "table-key", "undeclared-table", "connection"],
)
def test_environment_file_errors(cli, make_config, env_file: dict[str, Any], message: str) -> None:
    root = make_config({**ENV_FILES, "environments/qa.yml": env_file})
    assert one_error_line(cli("--env", "qa", "config", "validate", "--offline", config_dir=root)) == message


# ---------------------------------------------------------------- table overrides and merge order


def test_merge_order(make_config) -> None:
    """default_table_config < pipeline table < tables/<name>.yml < environment tables < environment pipeline tables."""
    layers = {"lookback": "1m", "description": "defaults", "zero_dates": "error", "primary_key": ["d"],
              "data_validation": False}
    root = make_config({
        "connections.yml": connections(),
        "pipelines/p.yml": {
            "pipeline": {"source": "s", "target": "t", "default_table_config": {"cdc_strategy": "full_sync", **layers}},
            "tables": {"orders": {"description": "pipeline", "lookback": "2m", "primary_key": ["p"],
                                  "zero_dates": "null"}},
        },
        "tables/orders.yml": {"lookback": "3m", "primary_key": ["t"], "zero_dates": "error"},
        "environments/e.yml": {"tables": {"orders": {"primary_key": ["e"], "zero_dates": "null"}},
                               "pipelines": {"p": {"tables": {"orders": {"zero_dates": "error"}}}}},
    })
    t = load_config(root, "e", environ={}).pipeline("p").tables["orders"]
    assert t.data_validation is False  # only in default_table_config
    assert t.description == "pipeline"  # pipeline beats defaults
    assert t.lookback.total_seconds() == 180  # tables/ beats pipeline
    assert t.primary_key == ["e"]  # environment tables beat tables/
    assert t.zero_dates == "error"  # environment's pipeline tables beat environment tables
    no_env = load_config(root, environ={}).pipeline("p").tables["orders"]
    assert (no_env.primary_key, no_env.zero_dates) == (["t"], "error")


def test_tables_override_every_pipeline_and_merges_deeply(make_config) -> None:
    table = {"cdc_strategy": "id_only", "cdc_id_column": "id", "processing": {"priority": "high", "batch_size": 5}}
    root = make_config({
        "connections.yml": connections(),
        "pipelines/a.yml": {"pipeline": {"source": "s", "target": "t"}, "tables": {"orders": table}},
        "pipelines/b.yml": {"pipeline": {"source": "s", "target": "t"}, "tables": {"orders": table, "other": table}},
        "tables/orders.yml": {"processing": {"batch_size": 999}, "validation": {"required_columns": ["id"]}},
    })
    cfg = load_config(root, environ={})
    for key in ("a", "b"):
        orders = cfg.pipeline(key).tables["orders"]
        assert (orders.processing.batch_size, orders.processing.priority) == (999, "high")
        assert orders.validation.required_columns == ["id"]
    assert cfg.pipeline("b").tables["other"].processing.batch_size == 5


def test_table_override_error_names_its_file(cli, make_config) -> None:
    root = make_config({"connections.yml": connections(), "tables/orders.yml": {"cdc_strategy": "sometimes"}})
    assert one_error_line(cli("config", "validate", config_dir=root)) == (
        "tables/orders.yml: cdc_strategy: must be one of 'hybrid', 'timestamp_only', 'id_only', 'full_sync' or 'binlog' "
        "(got 'sometimes')")


# ---------------------------------------------------------------- .env and the config folder


def test_dotenv_is_read_from_working_directory(cli, make_config, tmp_path: Path) -> None:
    root = make_config({"connections.yml": connections({"s": src(host="${DOTENV_HOST}", database="${DOTENV_DB}")})})
    (tmp_path / ".env").write_text("DOTENV_HOST=from-dotenv\nDOTENV_DB=from-dotenv-db\n")
    r = cli("connections", "info", "s", config_dir=root, env={"DOTENV_HOST": None, "DOTENV_DB": "from-real-env"})
    assert r.exit_code == 0, r.output
    assert "host:        from-dotenv" in r.stdout
    assert "database:    from-real-env" in r.stdout  # the real environment wins over .env


def test_dotenv_can_select_environment(cli, make_config, tmp_path: Path) -> None:
    root = make_config(ENV_FILES)
    (tmp_path / ".env").write_text("LAKESHIFT_ENV=development\n")
    r = cli("config", "validate", config_dir=root, env={"LAKESHIFT_ENV": None})
    assert r.exit_code == 0 and r.stdout.splitlines()[0].endswith("; environment development"), r.output


def test_config_dir_from_variable_and_missing_folder(cli, make_config, tmp_path: Path) -> None:
    root = make_config({"connections.yml": connections({"from_var": src()})})
    r = cli("connections", "list", env={"LAKESHIFT_CONFIG_DIR": str(root)})
    assert "from_var" in r.stdout
    assert one_error_line(cli("config", "validate", config_dir=tmp_path / "nope")) == (
        f"config folder {tmp_path / 'nope'} does not exist; pass --config-dir or run `lakeshift config init`")


def test_no_config_folder_means_builtin_defaults(cli, tmp_path: Path) -> None:
    # ./config is optional: v1.0 users run with .env only
    env = {"MYSQL_HOST": "legacy-db", "MYSQL_DATABASE": "settlement", "MYSQL_USERNAME": "app",
           "MYSQL_PASSWORD": "pw-1234", "LAKESHIFT_CONFIG_DIR": None}
    r = cli("connections", "info", "default", "--kind", "source", env=env)
    assert r.exit_code == 0, r.output
    assert "host:        legacy-db" in r.stdout and "port:        3306" in r.stdout
    assert "declared in: built-in default (v1.0 .env variables)" in r.stdout
    r = cli("config", "list-pipelines", env=env)
    assert "default_legacy" in r.stdout


def test_builtin_defaults_from_v1_variables(tmp_path: Path) -> None:
    root = tmp_path / "config"
    root.mkdir()
    env = {"MYSQL_HOST": "m", "MYSQL_PORT": "3307", "MYSQL_DATABASE": "db", "MYSQL_USERNAME": "u",
           "REDSHIFT_HOST": "r", "REDSHIFT_DATABASE": "dw", "REDSHIFT_USERNAME": "ru", "REDSHIFT_PASSWORD": "rp",
           "SSH_HOST": "bastion", "SSH_USER": "ec2-user", "SSH_KEY_PATH": "~/.ssh/k.pem",
           "S3_BUCKET_NAME": "v1-bucket", "AWS_REGION": "eu-west-1"}
    cfg = load_config(root, environ=env)
    s, t, lake = cfg.source("default"), cfg.target("default"), cfg.storage_for("default")
    assert (s.host, s.port, s.database, s.username) == ("m", 3307, "db", "u")
    assert (t.type, t.host, t.port, t.schema_, t.password.get_secret_value()) == ("redshift", "r", 5439, "public", "rp")
    assert t.ssh_tunnel is not None and (t.ssh_tunnel.host, t.ssh_tunnel.username, t.ssh_tunnel.port) == \
        ("bastion", "ec2-user", 22)
    assert (lake.type, lake.bucket, lake.region) == ("s3", "v1-bucket", "eu-west-1")
    p = cfg.pipeline("default")
    assert (p.name, p.isolation_prefix, p.pipeline.s3.partition_strategy) == ("default_legacy", "", "datetime")
    # S3_BUCKET works too; no bucket at all means a local ./lake; no SSH_HOST means no tunnel
    assert load_config(root, environ={"S3_BUCKET": "b2"}).storage_for("default").bucket == "b2"
    assert load_config(root, environ={}).storage_for("default").path == "./lake"
    plain = load_config(root, environ={k: v for k, v in env.items() if not k.startswith("SSH_")})
    assert plain.target("default").ssh_tunnel is None


def test_declared_connection_replaces_builtin(make_config) -> None:
    root = make_config({"connections.yml": connections({"default": src(host="mine")})})
    cfg = load_config(root, environ={"MYSQL_HOST": "legacy"})
    assert cfg.source("default").host == "mine"
    assert cfg.sources["default"].origin == "connections.yml"


def test_unknown_pipeline_suggests(cli, make_config) -> None:
    root = make_config({"connections.yml": connections(),
                        "pipelines/sales_pipeline.yml": {"pipeline": {"source": "s", "target": "t"}}})
    assert one_error_line(cli("config", "show-pipeline", "sales_pipelin", config_dir=root)) == (
        f"unknown pipeline 'sales_pipelin' (no {root}/pipelines/sales_pipelin.yml); did you mean 'sales_pipeline'? "
        "available: default, sales_pipeline")


def test_load_config_raises_config_error_type(make_config) -> None:
    root = make_config({"connections.yml": {"connections": {"sources": {"s": {"port": "x"}}}}})
    with pytest.raises(ConfigError):
        load_config(root, environ={})


def test_unquoted_null_zero_dates_means_null(make_config) -> None:
    text = "pipeline: {source: s, target: t}\ntables:\n  orders:\n    cdc_strategy: full_sync\n    zero_dates: null\n"
    root = make_config({"connections.yml": connections(), "pipelines/p.yml": text})
    assert load_config(root, environ={}).pipeline("p").tables["orders"].zero_dates == "null"
