"""Writes that carry S3 server-side-encryption headers.

pyarrow's S3FileSystem (through 26.x) cannot send `x-amz-server-side-encryption`
or `...-aws-kms-key-id`: its `default_metadata` only maps ACL, Cache-Control,
Content-Type, Content-Language and Expires. s3fs could, but its aiobotocore
pins an older botocore than the boto3 we have. So when `server_side_encryption`
is configured, the only two write entry points of the lake (`write_bytes` and
`open_output_stream`) PUT through boto3 with the headers — a single PUT, or a
multipart upload for Parquet parts, never an unencrypted object re-encrypted
later (bucket policies that deny unencrypted PUTs must keep working). Reading,
listing and deleting stay on pyarrow.fs: SSE-S3/KMS objects read transparently.
"""

from __future__ import annotations

from typing import Any

from lakeshift.config.models import S3Storage
from lakeshift.errors import LakeError
from lakeshift.s3_clients import s3_client, sse_headers

PART_SIZE = 8 * 1024 * 1024  # S3's minimum is 5 MiB for every part but the last


class SseWriter:
    """PUTs and multipart uploads with the storage's encryption headers."""

    def __init__(self, storage: S3Storage, part_size: int = PART_SIZE) -> None:
        try:
            self.client = s3_client(storage)
        except ImportError:
            raise LakeError("server_side_encryption needs boto3: pip install boto3") from None
        self.part_size = part_size
        self.extra = sse_headers(storage)

    def put(self, path: str, data: bytes) -> None:
        bucket, key = path.split("/", 1)
        self.client.put_object(Bucket=bucket, Key=key, Body=data, **self.extra)

    def open(self, path: str) -> _Upload:
        bucket, key = path.split("/", 1)
        return _Upload(self, bucket, key)


class _Upload:
    """A write-only file: buffers one part, becomes one PUT when small and a
    multipart upload otherwise. The object exists only after close()."""

    def __init__(self, writer: SseWriter, bucket: str, key: str) -> None:
        self.w, self.bucket, self.key = writer, bucket, key
        self.buf = bytearray()
        self.pos = 0
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.closed = False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.buf += view
        self.pos += len(view)
        while len(self.buf) >= self.w.part_size:
            chunk = bytes(self.buf[: self.w.part_size])
            del self.buf[: self.w.part_size]
            self._upload_part(chunk)
        return len(view)

    def _upload_part(self, chunk: bytes) -> None:
        client = self.w.client
        try:
            if self.upload_id is None:
                self.upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self.w.extra)[
                    "UploadId"
                ]
            n = len(self.parts) + 1
            etag = client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=n,
                                      Body=chunk)["ETag"]
            self.parts.append({"ETag": etag, "PartNumber": n})
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self.upload_id is None:
                self.w.client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buf), **self.w.extra)
                return
            if self.buf:
                self._upload_part(bytes(self.buf))
            self.w.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
            )
        except BaseException:
            self.abort()
            raise
        finally:
            self.closed = True
            self.buf.clear()

    def abort(self) -> None:
        """Drop the upload: nothing appears in the bucket."""
        self.closed = True
        self.buf.clear()
        if self.upload_id is not None:
            try:
                self.w.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            except Exception:  # noqa: BLE001 - best effort; a lifecycle rule removes the rest
                pass
            self.upload_id = None
