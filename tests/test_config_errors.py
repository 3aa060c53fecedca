"""Every configuration error is one line on stderr, exit 1, naming the file,
the key path and what is allowed. Messages are asserted exactly."""

from __future__ import annotations

from typing import Any

import pytest
from kit.cli import one_error_line

CONNECTIONS = {
    "connections": {
        "sources": {"sales_mysql": {"type": "mysql", "host": "db", "database": "sales", "username": "u"}},
        "targets": {"reporting": {"type": "postgres", "host": "pg", "database": "dw", "username": "u"}},
    }
}


def pipeline(tables: dict[str, Any] | None = None, **section: Any) -> dict[str, Any]:
    return {"pipeline": {"source": "sales_mysql", "target": "reporting", **section}, "tables": tables or {}}


def full(**extra: Any) -> dict[str, Any]:
    """A table that needs no CDC columns."""
    return {"cdc_strategy": "full_sync", **extra}


def validate(cli, make_config, files: dict[str, Any], *args: str) -> str:
    root = make_config({"connections.yml": CONNECTIONS, **files})
    return one_error_line(cli(*args, "config", "validate", config_dir=root))


# ---------------------------------------------------------------- unknown keys, types, enums


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"pipelines/sales_pipeline.yml": pipeline({"orders": {"cdc_stratgy": "hybrid"}})},
         "pipelines/sales_pipeline.yml: tables.orders.cdc_stratgy: unknown key; did you mean 'cdc_strategy'?"),
        ({"pipelines/p.yml": pipeline(processing={"stratgy": "parallel"})},
         "pipelines/p.yml: pipeline.processing.stratgy: unknown key; did you mean 'strategy'?"),
        ({"pipelines/p.yml": pipeline(default_table_config={"watermark_strategie": "automatic"})},
         "pipelines/p.yml: pipeline.default_table_config.watermark_strategie: unknown key; "
         "did you mean 'watermark_strategy'?"),
        ({"pipelines/p.yml": {"pipelin": {}}},
         "pipelines/p.yml: pipelin: unknown key; did you mean 'pipeline'?"),
        ({"pipelines/p.yml": {"pipeline": {}, "owner": "me"}},
         "pipelines/p.yml: owner: unknown key; allowed keys: pipeline, tables"),
        ({"tables/orders.yml": {"lookbak": "5m"}},
         "tables/orders.yml: lookbak: unknown key; did you mean 'lookback'?"),
        ({"pipelines/p.yml": pipeline({"orders": full(validation={"required_column": ["id"]})})},
         "pipelines/p.yml: tables.orders.validation.required_column: unknown key; did you mean 'required_columns'?"),
    ],
    ids=["table", "processing", "default_table_config", "top-level", "top-level-far", "tables-file", "validation"],
)
def test_unknown_key_suggests(cli, make_config, files: dict[str, Any], message: str) -> None:
    assert validate(cli, make_config, files) == message


@pytest.mark.parametrize(
    ("connections", "message"),
    [
        ({"conections": {}}, "connections.yml: conections: unknown key; did you mean 'connections'?"),
        ({"connections": {"source": {}}}, "connections.yml: connections.source: unknown key; did you mean 'sources'?"),
        ({"connections": {"sources": {"s": {"hots": "h"}}}},
         "connections.yml: connections.sources.s.hots: unknown key; did you mean 'host'?"),
        ({"connections": {"targets": {"t": {"type": "redshift", "iam_rol": "arn"}}}},
         "connections.yml: connections.targets.t.iam_rol: unknown key; did you mean 'iam_role'?"),
        ({"connections": {"sources": {"s": {"host": "h", "ssh_tunnel": {"enabeld": True}}}}},
         "connections.yml: connections.sources.s.ssh_tunnel.enabeld: unknown key; did you mean 'enabled'?"),
        ({"connection_settings": {"default_timout": 3}},
         "connections.yml: connection_settings.default_timout: unknown key; did you mean 'default_timeout'?"),
    ],
    ids=["top", "kind", "source", "target", "ssh", "settings"],
)
def test_unknown_connection_key(cli, make_config, connections: dict[str, Any], message: str) -> None:
    root = make_config({"connections.yml": connections})
    assert one_error_line(cli("config", "validate", config_dir=root)) == message


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"port": 70000}, "connections.sources.s.port: must be at most 65535 (got 70000)"),
        ({"port": 0}, "connections.sources.s.port: must be at least 1 (got 0)"),
        ({"port": "three-three-oh-six"}, "connections.sources.s.port: must be an integer (got 'three-three-oh-six')"),
        ({"port": 3306.5}, "connections.sources.s.port: must be a whole number (got 3306.5)"),
        ({"host": ["a", "b"]}, "connections.sources.s.host: must be a string (got a list)"),
        ({"connection_pool": {"max_connections": "ten"}},
         "connections.sources.s.connection_pool.max_connections: must be an integer (got 'ten')"),
        ({"connection_pool": {"min_connections": 5, "max_connections": 2}},
         "connections.sources.s.connection_pool: min_connections (5) is larger than max_connections (2)"),
        ({"type": "oracle"}, "connections.sources.s.type: must be one of 'mysql' or 'mariadb' (got 'oracle')"),
        ({"ssl": {"mode": "sometimes"}},
         "connections.sources.s.ssl.mode: must be one of 'disable', 'prefer', 'require', 'verify-ca' or "
         "'verify-full' (got 'sometimes')"),
        ({"ssh_tunnel": {"enabled": "maybe"}},
         "connections.sources.s.ssh_tunnel.enabled: must be true or false (got 'maybe')"),
        ({"ssh_tunnel": {"port": 99999}}, "connections.sources.s.ssh_tunnel.port: must be at most 65535 (got 99999)"),
    ],
    ids=["port-high", "port-zero", "port-text", "port-float", "host-list", "pool-type", "pool-order", "type",
         "tls", "ssh-bool", "ssh-port"],
)
def test_source_types_and_ranges(cli, make_config, source: dict[str, Any], message: str) -> None:
    body = {"host": "h", "database": "d", "username": "u", **source}
    root = make_config({"connections.yml": {"connections": {"sources": {"s": body}}}})
    assert one_error_line(cli("config", "validate", config_dir=root)) == f"connections.yml: {message}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "oracle", "host": "h"},
         "connections.targets.t: type 'oracle' is not supported; use one of 'postgres', 'postgresql', 'redshift', "
         "'duckdb'"),
        ({"host": "h"}, "connections.targets.t: a 'type' key is required"),
        ({"type": "duckdb"}, "connections.targets.t.path: required key is missing"),
        ({"type": "redshift", "host": "h", "port": 65536}, "connections.targets.t.port: must be at most 65535 (got 65536)"),
        ({"type": "postgres", "schema": "x; DROP SCHEMA public; --"},
         "connections.targets.t.schema: name 'x; DROP SCHEMA public; --' contains ';'; quotes, backticks, "
         "semicolons, backslashes and control characters are not allowed in names"),
    ],
    ids=["type", "no-type", "duckdb-path", "port", "schema-injection"],
)
def test_target_errors(cli, make_config, body: dict[str, Any], message: str) -> None:
    root = make_config({"connections.yml": {"connections": {"targets": {"t": body}}}})
    assert one_error_line(cli("config", "validate", config_dir=root)) == f"connections.yml: {message}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "s3"}, "connections.storage.x.bucket: required key is missing"),
        ({"type": "s3", "bucket": "b", "access_key_id": "AKIA"},
         "connections.storage.x: access_key_id and secret_access_key must be given together"),
        ({"type": "s3", "bucket": "b", "server_side_encryption": "aes"},
         "connections.storage.x.server_side_encryption: must be one of 'AES256' or 'aws:kms' (got 'aes')"),
        ({"type": "local"}, "connections.storage.x.path: required key is missing"),
        ({"type": "ftp", "path": "/x"},
         "connections.storage.x: type 'ftp' is not supported; use one of 's3', 'local'"),
    ],
    ids=["bucket", "key-pair", "sse", "local-path", "type"],
)
def test_storage_errors(cli, make_config, body: dict[str, Any], message: str) -> None:
    root = make_config({"connections.yml": {"connections": {"storage": {"x": body}}}})
    assert one_error_line(cli("config", "validate", config_dir=root)) == f"connections.yml: {message}"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"cdc_strategy": "hybird"},
         "tables.orders.cdc_strategy: must be one of 'hybrid', 'timestamp_only', 'id_only', 'full_sync' or 'binlog' "
         "(got 'hybird')"),
        (full(table_type="cube"), "tables.orders.table_type: must be one of 'fact' or 'dimension' (got 'cube')"),
        (full(processing={"batch_size": "lots"}), "tables.orders.processing.batch_size: must be an integer (got 'lots')"),
        (full(processing={"batch_size": 0}), "tables.orders.processing.batch_size: must be at least 1 (got 0)"),
        (full(processing={"priority": "urgent"}),
         "tables.orders.processing.priority: must be one of 'high', 'medium' or 'low' (got 'urgent')"),
        (full(validation={"max_null_percentage": 150}),
         "tables.orders.validation.max_null_percentage: must be at most 100 (got 150)"),
        (full(lookback="5 parsecs"), "tables.orders.lookback: '5 parsecs' is not a duration; use e.g. 30s, 10m, 2h or 7d"),
        (full(depends_on="customers"), "tables.orders.depends_on: must be a list (got 'customers')"),
        (full(zero_dates="zero"), "tables.orders.zero_dates: must be one of 'null' or 'error' (got 'zero')"),
    ],
    ids=["cdc", "table_type", "batch-type", "batch-range", "priority", "nulls", "lookback", "depends-type", "zero"],
)
def test_table_types_and_enums(cli, make_config, table: dict[str, Any], message: str) -> None:
    files = {"pipelines/sales_pipeline.yml": pipeline({"orders": table})}
    assert validate(cli, make_config, files) == f"pipelines/sales_pipeline.yml: {message}"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"processing": {"strategy": "fast"}},
         "pipeline.processing.strategy: must be one of 'sequential' or 'parallel' (got 'fast')"),
        ({"processing": {"max_parallel_tables": 0}}, "pipeline.processing.max_parallel_tables: must be at least 1 (got 0)"),
        ({"s3": {"partition_strategy": "weekly"}},
         "pipeline.s3.partition_strategy: must be one of 'datetime' or 'hybrid' (got 'weekly')"),
        ({"s3": {"compression": "lz4"}},
         "pipeline.s3.compression: must be one of 'snappy', 'zstd', 'gzip' or 'none' (got 'lz4')"),
        ({"s3": {"isolation_prefix": "../escape"}},
         "pipeline.s3.isolation_prefix: isolation_prefix '../escape' may use letters, digits, '_', '-', '.', '=' and '/'"),
        ({"default_table_config": ["x"]}, "pipeline.default_table_config: must be a mapping"),
    ],
    ids=["strategy", "parallel", "partition", "compression", "prefix", "defaults"],
)
def test_pipeline_section_errors(cli, make_config, section: dict[str, Any], message: str) -> None:
    files = {"pipelines/p.yml": pipeline(**section)}
    assert validate(cli, make_config, files) == f"pipelines/p.yml: {message}"


# ---------------------------------------------------------------- YAML syntax


def test_yaml_syntax_error_has_line_number(cli, make_config) -> None:
    text = "pipeline:\n  source: sales_mysql\n   target: reporting\n"
    assert validate(cli, make_config, {"pipelines/p.yml": text}) == (
        "pipelines/p.yml: YAML syntax error at line 3, column 10: mapping values are not allowed here")


def test_yaml_unclosed_bracket_names_where_it_opened(cli, make_config) -> None:
    text = "connections:\n  sources:\n    s: {host: h\n  targets: {}\n"
    root = make_config({"connections.yml": text})
    assert one_error_line(cli("config", "validate", config_dir=root)) == (
        "connections.yml: YAML syntax error at line 4, column 10: expected ',' or '}', but got ':' "
        "(while parsing a flow mapping at line 3, column 8)")


def test_yaml_tab_indent(cli, make_config) -> None:
    msg = validate(cli, make_config, {"tables/orders.yml": "lookback: 5m\n\tbatch: 1\n"})
    assert msg.startswith("tables/orders.yml: YAML syntax error at line 2, column 1: ")


def test_top_level_must_be_mapping(cli, make_config) -> None:
    assert validate(cli, make_config, {"pipelines/p.yml": "- a\n- b\n"}) == (
        "pipelines/p.yml: the top level must be a mapping (key: value), not list")


def test_empty_files_are_empty_mappings(cli, make_config) -> None:
    root = make_config({"connections.yml": "", "tables/orders.yml": "# nothing yet\n"})
    r = cli("config", "validate", config_dir=root)
    assert r.exit_code == 0, r.output


# ---------------------------------------------------------------- identifiers (SQL injection)


@pytest.mark.parametrize(
    ("key", "value", "shown", "char"),
    [
        ("full_name", "x; DROP TABLE y; --", "table 'x; DROP TABLE y; --'", "';'"),
        ("full_name", "orders`; DROP TABLE y", "table 'orders`; DROP TABLE y'", "'`'"),
        ("target_name", 'o"rders', "name 'o\"rders'", "'\"'"),
        ("cdc_timestamp_column", "updated_at' OR '1'='1", "name \"updated_at' OR '1'='1\"", '"\'"'),
        ("cdc_id_column", "id\\", "name 'id\\\\'", "'\\\\'"),
    ],
    ids=["semicolon", "backtick", "double-quote", "single-quote", "backslash"],
)
def test_injection_identifiers_rejected(cli, make_config, key: str, value: str, shown: str, char: str) -> None:
    table = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "id", key: value}
    assert validate(cli, make_config, {"pipelines/p.yml": pipeline({"orders": table})}) == (
        f"pipelines/p.yml: tables.orders.{key}: {shown} contains {char}; quotes, backticks, semicolons, "
        "backslashes and control characters are not allowed in names")


def test_comment_marker_and_column_lists_rejected(cli, make_config) -> None:
    msg = validate(cli, make_config, {"pipelines/p.yml": pipeline({"orders": full(target_name="a--b")})})
    assert msg == "pipelines/p.yml: tables.orders.target_name: name 'a--b' contains a comment marker; rename it"
    msg = validate(cli, make_config, {"pipelines/p.yml": pipeline(
        {"orders": full(validation={"required_columns": ["id", "x`y"]})})})
    assert msg.startswith("pipelines/p.yml: tables.orders.validation.required_columns.1: name 'x`y' contains '`'")


def test_table_name_key_injection_rejected(cli, make_config) -> None:
    msg = validate(cli, make_config, {"pipelines/p.yml": pipeline({"x; DROP TABLE y; --": full()})})
    assert msg.endswith("table 'x; DROP TABLE y; --' contains ';'; quotes, backticks, semicolons, backslashes "
                        "and control characters are not allowed in names")


def test_spaces_unicode_and_mixed_case_names_accepted(cli, make_config) -> None:
    tables = {
        "Order Items": full(target_name="Bestellpositionen Ü", primary_key=["Item ID"]),
        "Kunden_ÄÖÜ": {"cdc_strategy": "hybrid", "cdc_timestamp_column": "Geändert Am", "cdc_id_column": "KundenNr",
                       "full_name": "Shop DB.Kunden_ÄÖÜ"},
        "select": full(target_name="order"),  # reserved words are fine: names are always quoted
        "注文": full(),
    }
    root = make_config({"connections.yml": CONNECTIONS, "pipelines/p.yml": pipeline(tables)})
    r = cli("config", "validate", config_dir=root)
    assert r.exit_code == 0, r.output
    r = cli("config", "show-pipeline", "p", config_dir=root)
    assert "Bestellpositionen Ü" in r.stdout and "Shop DB.Kunden_ÄÖÜ" in r.stdout and "注文" in r.stdout


def test_every_error_is_one_line_even_with_many_problems(cli, make_config) -> None:
    tables = {"a": {"cdc_strategy": "bad", "table_type": "bad", "nope": 1}}
    root = make_config({"connections.yml": CONNECTIONS, "pipelines/p.yml": pipeline(tables)})
    r = cli("config", "validate", config_dir=root)
    assert one_error_line(r) == ("pipelines/p.yml: tables.a.cdc_strategy: must be one of 'hybrid', 'timestamp_only', "
                                 "'id_only', 'full_sync' or 'binlog' (got 'bad') (and 2 more problem(s), listed above)")
    listed = [line for line in r.stdout.splitlines() if line.startswith("  - pipelines/p.yml: tables.a.")]
    assert [line.split(": ")[1] for line in listed] == ["tables.a.cdc_strategy", "tables.a.table_type", "tables.a.nope"]
