"""A lake in an S3 bucket (or an S3-compatible store) under a prefix. Objects
appear whole when their PUT or multipart upload completes; with
server_side_encryption every write goes through sse.py with the headers."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import pyarrow.fs as pafs

from lakeshift import redact
from lakeshift.config.models import S3Storage
from lakeshift.errors import LakeError
from lakeshift.lake.errors import describe_error
from lakeshift.lake.sse import SseWriter
from lakeshift.lake.storage import Lake, PendingUpload, check_rel, utc
from lakeshift.s3_clients import s3_client, s3_filesystem


class S3Lake(Lake):
    """The lake under s3://bucket/prefix."""

    scheme = "s3://"
    storage: S3Storage

    def __init__(self, storage: S3Storage) -> None:
        super().__init__(storage)
        self.root = "/".join(p for p in (storage.bucket, storage.prefix) if p)
        self._sse: SseWriter | None = None

    @cached_property
    def filesystem(self) -> pafs.FileSystem:
        try:
            return s3_filesystem(self.storage)
        except Exception as exc:
            bucket = self.storage.bucket
            raise LakeError(redact.redact(f"cannot open s3://{bucket}: {describe_error(exc, self.storage)}")) from None

    @cached_property
    def _client(self) -> Any:
        """boto3 (pyarrow.fs cannot list multipart uploads)."""
        return s3_client(self.storage)

    def sse_writer(self) -> SseWriter:
        """The writer that sends the storage's server-side-encryption headers."""
        if self._sse is None:
            self._sse = SseWriter(self.storage)
        return self._sse

    def delete(self, rels: list[str] | tuple[str, ...]) -> None:
        """With server-side encryption, deletes go through boto3 too: pyarrow puts
        back a zero-byte 'folder/' marker when a folder's last file goes, an object
        without the encryption headers (refused where a bucket policy demands them)."""
        if not self.storage.server_side_encryption:
            super().delete(rels)
            return
        for rel in rels:
            bucket, key = self.full_path(check_rel(rel)).split("/", 1)
            try:
                self._client.delete_object(Bucket=bucket, Key=key)  # deleting a missing key is fine
            except Exception as exc:
                raise self.error("delete", rel, exc) from None

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self.full_path(check_rel(rel))
        try:
            if self.storage.server_side_encryption:
                self.sse_writer().put(path, data)
            else:
                with self.filesystem.open_output_stream(path) as out:
                    out.write(data)
        except Exception as exc:
            raise self.error("write", rel, exc) from None

    def sync(self, rel: str) -> None:
        pass  # a completed upload is durable

    def prune_dirs(self, rels: list[str], stop: str = "") -> None:
        pass  # S3 has no folders (pyarrow may leave zero-byte 'dir/' markers)

    def incomplete_uploads(self, rel_prefix: str) -> list[PendingUpload]:
        bucket, _, key = self.full_path(rel_prefix.strip("/")).partition("/")
        out = []
        try:
            for page in self._client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key + "/"):
                for u in page.get("Uploads", []):
                    out.append(PendingUpload(u["Key"][len(key) + 1:], u["UploadId"], utc(u.get("Initiated"))))
        except Exception as exc:
            raise self.error("list the unfinished uploads of", rel_prefix, exc) from None
        return sorted(out, key=lambda u: (u.path, u.initiated))

    def abort_uploads(self, rel_prefix: str, uploads: list[PendingUpload]) -> None:
        bucket, _, key = self.full_path(rel_prefix.strip("/")).partition("/")
        for u in uploads:
            try:
                self._client.abort_multipart_upload(Bucket=bucket, Key=f"{key}/{u.path}", UploadId=u.upload_id)
            except Exception as exc:
                if "NoSuchUpload" not in str(exc):
                    raise self.error("abort the upload of", f"{rel_prefix}/{u.path}", exc) from None

    def _open_output(self, path: str) -> Any:
        if self.storage.server_side_encryption:
            return self.sse_writer().open(path)
        return self.filesystem.open_output_stream(path)

    def _check_root(self) -> None:
        bucket = self.storage.bucket
        try:
            info = self.filesystem.get_file_info(bucket)
        except Exception as exc:
            raise self.error("list", "", exc) from None
        if info.type == pafs.FileType.NotFound:
            raise LakeError(f"cannot use {self.uri()}: bucket {bucket!r} does not exist")

    def _unwritable_way_out(self, rel_folder: str) -> str:
        return "check the bucket, the prefix and that these credentials may put and delete objects there"
