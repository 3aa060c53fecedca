"""The example configuration validates in every environment, its local
connections really connect, and docs/configuration.md covers every key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from lakeshift.config import models

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "config"
ENVIRONMENTS = sorted(p.stem for p in (EXAMPLE / "environments").glob("*.yml"))
LOCAL = ("local_mysql", "local_postgres", "local_duckdb", "local_lake")


@pytest.mark.parametrize("env", [None, *ENVIRONMENTS])
def test_example_validates(cli, env: str | None) -> None:
    args = ("--env", env) if env else ()
    r = cli(*args, "config", "validate", config_dir=EXAMPLE, env={"LAKESHIFT_ENV": None})
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"Config {EXAMPLE} is valid: 3 pipeline(s), 4 source(s), 5 target(s), 4 storage(s)")
    for pipeline in ("default", "sales_pipeline", "analytics_pipeline"):
        assert cli(*args, "config", "validate-pipeline", pipeline, config_dir=EXAMPLE).exit_code == 0


def test_example_mirrors_the_spec(cli) -> None:
    from lakeshift.config import load_config

    cfg = load_config(EXAMPLE, environ={})
    assert {"default", "sales_mysql", "inventory_mysql"} <= set(cfg.sources)
    assert {"default", "reporting_redshift", "staging_redshift"} <= set(cfg.targets)
    assert {c.type for c in cfg.targets.values()} == {"redshift", "postgres", "duckdb"}
    assert {c.type for c in cfg.storage.values()} == {"s3", "local"}
    rr = cfg.targets["reporting_redshift"].model
    assert rr.ssh_tunnel.enabled and rr.iam_role
    sales = cfg.pipeline("sales_pipeline")
    assert list(sales.tables) == ["customers", "orders", "order_items"]
    assert sales.tables["order_items"].depends_on == ["orders"]
    assert sales.tables["orders"].processing.batch_size == 20000  # tables/orders.yml beats the pipeline
    assert sales.tables["customers"].validation.max_null_percentage == 2.5
    dev = load_config(EXAMPLE, "development", environ={})
    assert dev.pipeline("sales_pipeline").pipeline.target == "local_duckdb"
    assert dev.pipeline("sales_pipeline").tables["orders"].processing.batch_size == 1000


def test_example_lists_and_tests_local_connections(cli) -> None:
    r = cli("connections", "list", config_dir=EXAMPLE)
    assert r.exit_code == 0
    assert "reporting_redshift" in r.stdout and "not usable: needs" in r.stdout
    for name in LOCAL:
        r = cli("connections", "test", name, config_dir=EXAMPLE)
        assert r.exit_code == 0, r.output
        assert re.match(rf"\w+ {name}: OK \(\d+ ms\)", r.stdout)
    r = cli("connections", "test", "--all", config_dir=EXAMPLE)
    assert r.exit_code == 0, r.output


def test_example_holds_no_secret_values() -> None:
    secret_keys = {"password", "private_key_passphrase", "access_key_id", "secret_access_key", "session_token"}

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in secret_keys:
                    assert isinstance(v, str) and re.fullmatch(r"\$\{[A-Z0-9_]+(:-)?\}", v), f"{where}.{k}: {v!r}"
                walk(v, f"{where}.{k}")

    for path in EXAMPLE.rglob("*.yml"):
        walk(yaml.safe_load(path.read_text()), path.name)


def _models() -> list[type[BaseModel]]:
    return [models.MySQLSource, models.PostgresTarget, models.RedshiftTarget, models.DuckDBTarget,
            models.SSHTunnel, models.TLSSettings, models.PoolSettings, models.S3Storage, models.LocalStorage,
            models.ConnectionSettings, models.PipelineSection, models.PipelineProcessing, models.LakeSettings,
            models.TableConfig, models.TableProcessing, models.ValidationRules]


def test_docs_cover_every_key() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [f"{m.__name__}.{f.alias or n}" for m in _models() for n, f in m.model_fields.items()
               if not re.search(rf"[`.]{re.escape(f.alias or n)}[`:. ]", doc)]
    assert not missing, f"docs/configuration.md does not mention: {', '.join(missing)}"
