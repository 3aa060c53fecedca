"""Config files that are not what the loader can trust: text that is not UTF-8
and mappings with a key written twice. Each is one line naming the file, where
in it, and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kit.cli import one_error_line

CONNECTIONS = (
    "connections:\n"
    "  sources:\n"
    "    sales_mysql: {type: mysql, host: db, database: sales, username: u}\n"
    "  targets:\n"
    "    reporting: {type: postgres, host: pg, database: dw, username: u}\n"
)
PIPELINE = "pipeline:\n  source: sales_mysql\n  target: reporting\ntables:\n  orders:\n    cdc_strategy: full_sync\n"


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in {"connections.yml": CONNECTIONS, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return root


# ---------------------------------------------------------------- not UTF-8

LATIN1_COMMENT = "# Zürich office\n".encode("latin-1")


@pytest.mark.parametrize(
    ("rel", "files", "args", "where"),
    [
        ("connections.yml", {"connections.yml": CONNECTIONS.encode() + LATIN1_COMMENT}, (), "line 6, column 4"),
        ("pipelines/p.yml", {"pipelines/p.yml": LATIN1_COMMENT + PIPELINE.encode()}, (), "line 1, column 4"),
        ("tables/orders.yml", {"pipelines/p.yml": PIPELINE,
                               "tables/orders.yml": b"lookback: 5m\n" + "note: caf\xe9\n".encode("latin-1")},
         (), "line 2, column 10"),
        ("environments/dev.yml", {"pipelines/p.yml": PIPELINE, "environments/dev.yml": LATIN1_COMMENT},
         ("--env", "dev"), "line 1, column 4"),
    ],
    ids=["connections", "pipeline", "tables", "environment"],
)
def test_latin1_yaml_names_file_position_and_the_fix(cli, tmp_path: Path, rel: str, files: dict[str, bytes],
                                                     args: tuple[str, ...], where: str) -> None:
    root = write(tmp_path / "config", files)
    message = one_error_line(cli(*args, "config", "validate", config_dir=root))
    offset = next(i for i, byte in enumerate((root / rel).read_bytes()) if byte >= 0x80)
    assert message.startswith(f"{rel}: not UTF-8 text (byte 0x")
    assert f"at {where}, byte offset {offset}); save it as UTF-8" in message


def test_latin1_dotenv_names_file_and_the_fix(cli, tmp_path: Path) -> None:
    root = write(tmp_path / "config", {"pipelines/p.yml": PIPELINE})
    (tmp_path / ".env").write_bytes("MYSQL_HOST=db\nMYSQL_PASSWORD=caf\xe9\n".encode("latin-1"))
    assert one_error_line(cli("config", "validate", config_dir=root)) == (
        ".env: not UTF-8 text (byte 0xe9 at line 2, column 19, byte offset 32); save it as UTF-8")


def test_utf8_text_still_loads(cli, tmp_path: Path) -> None:
    root = write(tmp_path / "config", {"pipelines/p.yml": "# Zürich office\n" + PIPELINE})
    (tmp_path / ".env").write_text("GREETING=grüezi\n", encoding="utf-8")
    r = cli("config", "validate", config_dir=root)
    assert r.exit_code == 0, r.output


# ---------------------------------------------------------------- duplicate keys


@pytest.mark.parametrize(
    ("rel", "text", "message"),
    [
        ("pipelines/p.yml",
         "pipeline:\n  source: sales_mysql\n  target: reporting\ntables:\n  orders:\n    cdc_strategy: full_sync\n"
         "    description: x\n    cdc_strategy: hybrid\n",
         "duplicate key tables.orders.cdc_strategy at lines 6 and 8"),
        ("pipelines/p.yml", PIPELINE + "  orders:\n    cdc_strategy: hybrid\n",
         "duplicate key tables.orders at lines 5 and 7"),
        ("pipelines/p.yml", PIPELINE + "pipeline:\n  source: other\n", "duplicate key pipeline at lines 1 and 7"),
        ("connections.yml",
         CONNECTIONS + "    reporting: {type: duckdb, path: x.duckdb}\n",
         "duplicate key connections.targets.reporting at lines 5 and 6"),
        ("connections.yml",
         CONNECTIONS.replace("host: db,", "host: db, host: other,"),
         "duplicate key connections.sources.sales_mysql.host at lines 3 and 3"),
        ("tables/orders.yml", "lookback: 5m\ndescription: x\nlookback: 1h\n", "duplicate key lookback at lines 1 and 3"),
        ("environments/dev.yml",
         "pipelines:\n  p:\n    tables:\n      orders: {lookback: 1m}\n      orders: {lookback: 2m}\n",
         "duplicate key pipelines.p.tables.orders at lines 4 and 5"),
    ],
    ids=["nested", "table", "top-level", "connection", "flow-mapping", "tables-file", "environment"],
)
def test_duplicate_key_names_key_path_and_both_lines(cli, tmp_path: Path, rel: str, text: str, message: str) -> None:
    files = {"pipelines/p.yml": PIPELINE, rel: text}
    root = write(tmp_path / "config", files)
    args = ("--env", "dev") if rel.startswith("environments/") else ()
    assert one_error_line(cli(*args, "config", "validate", config_dir=root)) == f"{rel}: {message}; keep one of them"


def test_merge_key_overrides_are_not_duplicates(cli, tmp_path: Path) -> None:
    """A key written next to a `<<` merge overrides the merged one: that is YAML, not a mistake."""
    text = ("pipeline:\n  source: sales_mysql\n  target: reporting\n"
            "  default_table_config: &d {cdc_strategy: full_sync, description: base}\n"
            "tables:\n  orders:\n    <<: *d\n    description: orders\n")
    root = write(tmp_path / "config", {"pipelines/p.yml": text})
    r = cli("config", "validate", config_dir=root)
    assert r.exit_code == 0, r.output
    assert yaml.safe_load(text)["tables"]["orders"]["description"] == "orders"
