"""The lake as lakeshift sees it (a local folder or the S3 server), S3
clients with the test credentials, and file trees for before/after checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import TEST_AWS_KEY, TEST_AWS_SECRET


def local_storage(path: Path) -> dict[str, Any]:
    """A `connections.storage` entry for a local folder."""
    return {"type": "local", "path": str(path)}


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=TEST_AWS_KEY,
                        aws_secret_access_key=TEST_AWS_SECRET, region_name="us-east-1")


def table_lake(storage: dict[str, Any], pipeline: str = "p1", table: str = "items") -> Any:
    """The table's folder as lakeshift sees it (local folder or the S3 server)."""
    from lakeshift.config.models import LocalStorage, S3Storage
    from lakeshift.lake import Lake, TableLake

    model = S3Storage(**storage) if storage["type"] == "s3" else LocalStorage(**storage)
    return TableLake(Lake.from_config(model), pipeline, table)


def manifest_ids(storage: dict[str, Any], pipeline: str = "p1", table: str = "items") -> list[str]:
    return table_lake(storage, pipeline, table).manifest_ids()


def part_files(storage: dict[str, Any], pipeline: str = "p1", table: str = "items") -> list[str]:
    tl = table_lake(storage, pipeline, table)
    return [f.path for f in tl.files() if f.path.endswith(".parquet")]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> content)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in iter_files(folder)}


def iter_files(folder: Path) -> Iterator[Path]:
    yield from (p for p in sorted(folder.rglob("*")) if p.is_file())
