"""`lakeshift config init`: a v1.0 user's .env becomes a config folder of
${VAR} references; no secret value is ever written."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kit.cli import one_error_line

SECRETS = {
    "MYSQL_PASSWORD": "mysql-Secret-4711",
    "REDSHIFT_PASSWORD": "redshift-Secret-0815",
    "AWS_SECRET_ACCESS_KEY": "aws/Secret+Key/1234567890",
    "AWS_ACCESS_KEY_ID": "AKIAINITTEST00000000",
}
DOTENV = {
    "MYSQL_HOST": "legacy-db.internal", "MYSQL_DATABASE": "settlement", "MYSQL_USERNAME": "backup_user",
    "REDSHIFT_HOST": "dw.abc.redshift.amazonaws.com", "REDSHIFT_DATABASE": "dw", "REDSHIFT_USERNAME": "loader",
    "SSH_HOST": "bastion.internal", "SSH_USER": "ec2-user", "SSH_KEY_PATH": "/keys/bastion.pem",
    "S3_BUCKET_NAME": "v1-backups", "AWS_REGION": "us-east-1", **SECRETS,
}


@pytest.fixture
def dotenv(tmp_path: Path) -> Iterator[Path]:
    """A v1.0 .env in the working directory; the variables are not in the real environment."""
    saved = dict(os.environ)
    for key in DOTENV:
        os.environ.pop(key, None)
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in DOTENV.items()))
    yield path
    os.environ.clear()
    os.environ.update(saved)


def written_text(root: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(root.rglob("*.yml")))


def test_init_writes_references_never_secrets(cli, dotenv: Path, tmp_path: Path) -> None:
    root = tmp_path / "config"
    r = cli("config", "init", config_dir=root)
    assert r.exit_code == 0, r.output
    assert f"wrote {root / 'connections.yml'}" in r.stdout
    text = written_text(root)
    for name, secret in SECRETS.items():
        assert secret not in text, name
    for value in DOTENV.values():  # nothing from .env is copied, not even host names: all stay references
        assert value not in text
    conns = yaml.safe_load((root / "connections.yml").read_text())["connections"]
    assert conns["sources"]["default"]["password"] == "${MYSQL_PASSWORD:-}"
    assert conns["sources"]["default"]["host"] == "${MYSQL_HOST}"
    assert conns["targets"]["default"]["ssh_tunnel"]["private_key_path"] == "${SSH_KEY_PATH}"
    assert conns["storage"]["default"]["bucket"] == "${S3_BUCKET_NAME}"
    assert conns["storage"]["default"]["secret_access_key"] == "${AWS_SECRET_ACCESS_KEY}"
    assert (root / "pipelines" / "default.yml").is_file()
    assert (root / "tables").is_dir() and (root / "environments").is_dir()
    assert SECRETS["MYSQL_PASSWORD"] not in r.output


def test_init_config_validates_and_resolves_from_dotenv(cli, dotenv: Path, tmp_path: Path) -> None:
    root = tmp_path / "config"
    assert cli("config", "init", config_dir=root).exit_code == 0
    r = cli("config", "validate", config_dir=root)
    assert r.exit_code == 0, r.output
    assert "not usable" not in r.stdout  # every variable comes from .env
    r = cli("connections", "info", "default", "--kind", "target", config_dir=root)
    assert re.search(r"host: +dw\.abc\.redshift\.amazonaws\.com\n", r.stdout)
    assert re.search(r"password: +set\n", r.stdout)
    assert re.search(r"ssh tunnel: +ec2-user@bastion\.internal:22\n", r.stdout)
    assert SECRETS["REDSHIFT_PASSWORD"] not in r.output


def test_init_refuses_to_overwrite_without_force(cli, dotenv: Path, tmp_path: Path) -> None:
    root = tmp_path / "config"
    assert cli("config", "init", config_dir=root).exit_code == 0
    (root / "connections.yml").write_text("# my edits\n")
    assert one_error_line(cli("config", "init", config_dir=root)) == (
        f"{root / 'connections.yml'} already exists; pass --force to overwrite it")
    assert (root / "connections.yml").read_text() == "# my edits\n"
    r = cli("config", "init", "--force", config_dir=root)
    assert r.exit_code == 0, r.output
    assert "${MYSQL_HOST}" in (root / "connections.yml").read_text()


def test_init_without_ssh_or_bucket(cli, tmp_path: Path) -> None:
    env = {k: None for k in DOTENV} | {"MYSQL_HOST": "db", "MYSQL_DATABASE": "d", "MYSQL_USERNAME": "u"}
    root = tmp_path / "config"
    assert cli("config", "init", config_dir=root, env=env).exit_code == 0
    conns = yaml.safe_load((root / "connections.yml").read_text())["connections"]
    assert "ssh_tunnel" not in conns["targets"]["default"]
    assert conns["storage"]["default"] == {"type": "local", "path": "./lake",
                                           "description": "built-in local lake folder"}


def test_init_default_folder_is_config(cli, dotenv: Path, tmp_path: Path) -> None:
    r = cli("config", "init", env={"LAKESHIFT_CONFIG_DIR": None})
    assert r.exit_code == 0, r.output
    assert (tmp_path / "config" / "connections.yml").is_file()
