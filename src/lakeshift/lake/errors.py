"""Lake failures as one line: which file, what was done, and why in words a
user can act on (an unreachable endpoint, a missing bucket, rejected keys),
never a key (they are registered with `redact`)."""

from __future__ import annotations

from typing import Any

from lakeshift import redact
from lakeshift.errors import LakeError


class LakeFileNotFound(LakeError):
    """A file the lake should hold does not exist."""


def lake_error(action: str, uri: str, exc: BaseException, storage: Any) -> LakeError:
    """The LakeError for `action` on `uri` failing with `exc` (a LakeError stays as it is)."""
    if isinstance(exc, LakeError):
        return exc
    if isinstance(exc, FileNotFoundError) or _is_not_found(exc):
        return LakeFileNotFound(redact.redact(f"cannot {action} {uri}: not found"))
    return LakeError(redact.redact(f"cannot {action} {uri}: {describe_error(exc, storage)}"))


def describe_error(exc: BaseException, storage: Any) -> str:
    """A short reason for an S3/local failure, from pyarrow's or boto3's error."""
    text = " ".join(str(exc).split())
    code = _code(exc)
    endpoint = _endpoint(storage)
    bucket = getattr(storage, "bucket", "")
    if "NETWORK_CONNECTION" in text or type(exc).__name__ in ("EndpointConnectionError", "ConnectTimeoutError"):
        return f"cannot reach the S3 endpoint {endpoint} (is it running? check endpoint_url or AWS_ENDPOINT_URL_S3)"
    if "NO_SUCH_BUCKET" in text or code == "NoSuchBucket":
        return f"bucket {bucket!r} does not exist"
    if any(k in text for k in ("INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "InvalidAccessKeyId")) or code in (
        "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"
    ):
        return "the S3 credentials were rejected"
    if "ACCESS_DENIED" in text or "AccessDenied" in text or code in ("AccessDenied", "403"):
        return "access denied (check the credentials and the bucket policy)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.strerror and not text.startswith("When "):
        return exc.strerror
    # pyarrow: "When <doing> ...: AWS Error X during Y operation: <message> (Request ID: ...)"
    if "AWS Error" in text:
        text = text.split("AWS Error", 1)[1].split("(Request ID", 1)[0].strip()
    return text[:300] or type(exc).__name__


def _endpoint(storage: Any) -> str:
    """The endpoint requests went to, and which setting chose it (see s3_clients.endpoint)."""
    from lakeshift.config.models import S3Storage
    from lakeshift.s3_clients import endpoint

    if not isinstance(storage, S3Storage):
        return "AWS S3"
    try:
        return endpoint(storage).describe()
    except LakeError:
        return storage.endpoint_url or "AWS S3"


def _code(exc: BaseException) -> str:
    """boto3's error code ('NoSuchKey', 'AccessDenied' ...), or ''."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""


def _is_not_found(exc: BaseException) -> bool:
    return _code(exc) in ("NoSuchKey", "404")
