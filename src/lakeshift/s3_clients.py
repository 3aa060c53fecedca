"""The one place that turns an S3 storage's settings (endpoint, region, keys,
encryption) into clients: pyarrow's S3FileSystem for reading and writing the
lake, and a boto3 client for what pyarrow.fs cannot do (server-side-encryption
headers, multipart upload listing). Without keys in the storage, both use the
default credential chain. Neutral ground: the lake and the Redshift loader
(its COPY manifest is an object in the lake) both use it."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from lakeshift import redact
from lakeshift.config.models import S3Storage

CONNECT_TIMEOUT = 5  # seconds
REQUEST_TIMEOUT = 60


def static_keys(storage: S3Storage) -> tuple[str, str, str | None] | None:
    """(access key id, secret, session token) when the storage names keys;
    they are registered with redact, so no error that echoes them prints them."""
    redact.register_model(storage)
    if storage.access_key_id is None or storage.secret_access_key is None:
        return None
    token = storage.session_token.get_secret_value() if storage.session_token is not None else None
    return storage.access_key_id.get_secret_value(), storage.secret_access_key.get_secret_value(), token


def s3_filesystem(storage: S3Storage) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem for the storage's bucket."""
    kwargs: dict[str, Any] = {
        "region": _region(storage),
        "connect_timeout": CONNECT_TIMEOUT,
        "request_timeout": REQUEST_TIMEOUT,
        # Small files (manifests, state) go as one PUT; no multipart left behind by a crash before 5 MB.
        "allow_delayed_open": True,
    }
    if storage.endpoint_url:
        parts = urlsplit(storage.endpoint_url if "://" in storage.endpoint_url else f"https://{storage.endpoint_url}")
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme or "https"
    keys = static_keys(storage)
    if keys is not None:
        kwargs["access_key"], kwargs["secret_key"], token = keys
        if token is not None:
            kwargs["session_token"] = token
    return pafs.S3FileSystem(**kwargs)


def _region(storage: S3Storage) -> str:
    region = storage.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region and not storage.endpoint_url:
        try:  # AWS answers with a redirect when the region is wrong; ask once instead
            region = pafs.resolve_s3_region(storage.bucket)
        except Exception:  # noqa: BLE001 - the first real request reports the problem
            region = None
    return region or "us-east-1"


def s3_client(storage: S3Storage) -> Any:
    """A boto3 S3 client: the storage's endpoint, region and keys."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {}
    keys = static_keys(storage)
    if keys is not None:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"], token = keys
        if token is not None:
            kwargs["aws_session_token"] = token
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=CONNECT_TIMEOUT,
        read_timeout=REQUEST_TIMEOUT, s3={"addressing_style": "path"} if storage.endpoint_url else None,
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=storage.endpoint_url, region_name=storage.region, config=config, **kwargs
    )


def sse_headers(storage: S3Storage) -> dict[str, str]:
    """boto3's arguments for the storage's server-side encryption ({} when none)."""
    if not storage.server_side_encryption:
        return {}
    headers = {"ServerSideEncryption": storage.server_side_encryption}
    if storage.server_side_encryption == "aws:kms" and storage.kms_key_id:
        headers["SSEKMSKeyId"] = storage.kms_key_id
    return headers


def put_object(storage: S3Storage, path: str, data: bytes) -> None:
    """One PUT of bucket/key `path`, with the storage's encryption headers."""
    bucket, key = path.split("/", 1)
    s3_client(storage).put_object(Bucket=bucket, Key=key, Body=data, **sse_headers(storage))
