"""The one place that turns an S3 storage's settings (endpoint, region, keys,
encryption) into clients: pyarrow's S3FileSystem for reading and writing the
lake, and a boto3 client for what pyarrow.fs cannot do (server-side-encryption
headers, multipart upload listing). Neutral ground: the lake and the Redshift
loader (its COPY manifest is an object in the lake) both use it.

Like the AWS CLI: the endpoint is the storage's `endpoint_url`, else
`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, or the profile's `endpoint_url` in
the AWS config file (resolved once here and handed to both clients: pyarrow
does not read those). Without keys in the storage, both clients use the
standard credential chain (environment, `AWS_PROFILE` and the shared
credentials/config files, web identity, container and instance roles)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from lakeshift import redact
from lakeshift.config.models import S3Storage
from lakeshift.errors import LakeError

CONNECT_TIMEOUT = 5  # seconds
REQUEST_TIMEOUT = 60
_ENDPOINT_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")  # the AWS SDKs' order


@dataclass(frozen=True)
class Endpoint:
    """Where S3 requests go: `url` None means AWS S3 itself; `source` says which setting chose it."""

    url: str | None
    source: str = ""

    def describe(self) -> str:
        if self.url is None:
            return "AWS S3"
        return redact.redact(self.url) + (f" (from {self.source})" if self.source != "endpoint_url" else "")


def _aws_session() -> Any:
    """A botocore session: AWS_PROFILE, the config/credentials files and the credential chain."""
    import botocore.session

    return botocore.session.Session()


def endpoint(storage: S3Storage) -> Endpoint:
    """The storage's endpoint_url, else the one the AWS tools would use (env, then the config file)."""
    if storage.endpoint_url:
        return Endpoint(storage.endpoint_url, "endpoint_url")
    with _aws_config_errors():
        session = _aws_session()
        if str(session.get_config_variable("ignore_configured_endpoint_urls") or "").lower() == "true":
            return Endpoint(None)
        for var in _ENDPOINT_VARS:
            if os.environ.get(var):
                return Endpoint(os.environ[var], var)
        scoped = session.get_scoped_config()
        services = scoped.get("services")
        config = session.full_config.get("services", {}).get(services, {}) if services else {}
        url = config.get("s3", {}).get("endpoint_url") or scoped.get("endpoint_url")
    return Endpoint(url, "the AWS config file") if url else Endpoint(None)


@contextmanager
def _aws_config_errors() -> Iterator[None]:
    """botocore's complaints about the AWS config (a profile no file has ...) as one LakeError line."""
    from botocore.exceptions import BotoCoreError

    try:
        yield
    except BotoCoreError as exc:
        raise LakeError(redact.redact(f"S3: {exc} (check AWS_PROFILE, AWS_CONFIG_FILE and "
                                      "AWS_SHARED_CREDENTIALS_FILE)")) from None


def static_keys(storage: S3Storage) -> tuple[str, str, str | None] | None:
    """(access key id, secret, session token) when the storage names keys;
    they are registered with redact, so no error that echoes them prints them."""
    redact.register_model(storage)
    if storage.access_key_id is None or storage.secret_access_key is None:
        return None
    token = storage.session_token.get_secret_value() if storage.session_token is not None else None
    return storage.access_key_id.get_secret_value(), storage.secret_access_key.get_secret_value(), token


def chain_keys() -> tuple[str, str, str | None] | None:
    """The standard credential chain's current keys (registered with redact), None when it has none."""
    with _aws_config_errors():
        creds = _aws_session().get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
    if frozen is None or not frozen.access_key or not frozen.secret_key:
        return None
    for value in frozen:
        if value:
            redact.register(value)
    return frozen.access_key, frozen.secret_key, frozen.token or None


def s3_filesystem(storage: S3Storage) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem for the storage's bucket."""
    where = endpoint(storage)
    kwargs: dict[str, Any] = {
        "region": _region(storage, where),
        "connect_timeout": CONNECT_TIMEOUT,
        "request_timeout": REQUEST_TIMEOUT,
        # Small files (manifests, state) go as one PUT; no multipart left behind by a crash before 5 MB.
        "allow_delayed_open": True,
    }
    if where.url:
        parts = urlsplit(where.url if "://" in where.url else f"https://{where.url}")
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme or "https"
    keys = static_keys(storage)
    if keys is not None:
        kwargs["access_key"], kwargs["secret_key"], token = keys
        if token is not None:
            kwargs["session_token"] = token
    return pafs.S3FileSystem(**kwargs)


def _region_setting(storage: S3Storage) -> str | None:
    """The storage's region, else AWS_REGION / AWS_DEFAULT_REGION, else the profile's."""
    region = storage.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    with _aws_config_errors():
        return _aws_session().get_config_variable("region")


def _region(storage: S3Storage, where: Endpoint) -> str:
    region = _region_setting(storage)
    if not region and not where.url:
        try:  # AWS answers with a redirect when the region is wrong; ask once instead
            region = pafs.resolve_s3_region(storage.bucket)
        except Exception:  # noqa: BLE001 - the first real request reports the problem
            region = None
    return region or "us-east-1"


def s3_client(storage: S3Storage) -> Any:
    """A boto3 S3 client: the same endpoint and region as s3_filesystem, the storage's keys or the chain."""
    import boto3
    from botocore.config import Config

    where = endpoint(storage)
    kwargs: dict[str, Any] = {}
    keys = static_keys(storage)
    if keys is not None:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"], token = keys
        if token is not None:
            kwargs["aws_session_token"] = token
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=CONNECT_TIMEOUT,
        read_timeout=REQUEST_TIMEOUT, s3={"addressing_style": "path"} if where.url else None,
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=where.url, region_name=_region_setting(storage), config=config, **kwargs
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
