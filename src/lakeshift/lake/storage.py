"""One filesystem layer for the lake: pyarrow.fs for S3 (and S3-compatible
stores) and local folders alike. Paths given to `Lake` are relative to its
root (bucket/prefix, or the local folder) and always use '/'.

Writes are atomic: an S3 object appears only when its PUT (or multipart
upload) completes; a local file is written to a temporary name, fsynced and
renamed over the target. Every failure becomes a one-line LakeError naming
the URI; keys never appear in it (they are registered with `redact`)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from lakeshift import redact
from lakeshift.config.models import LocalStorage, S3Storage
from lakeshift.errors import LakeError

if TYPE_CHECKING:
    from lakeshift.lake.sse import SseWriter


class LakeFileNotFound(LakeError):
    """A file the lake should hold does not exist."""


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative to the root it was listed from ('/'-separated)
    size: int
    mtime: datetime  # UTC, timezone-aware


@dataclass(frozen=True)
class PendingUpload:
    """An S3 multipart upload never completed nor aborted (its writer was killed):
    no object, no listing shows it, but S3 keeps (and bills) its parts."""

    path: str  # relative to the root it was listed from
    upload_id: str
    initiated: datetime  # UTC


def check_rel(rel: str) -> str:
    """A relative lake path: no leading '/', no '.'/'..' or empty parts."""
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") for p in parts) or "\\" in rel:
        raise LakeError(f"invalid lake path {rel!r}")
    return rel


class Lake:
    """The lake root of one storage connection."""

    def __init__(self, storage: S3Storage | LocalStorage, base_dir: Path | None = None) -> None:
        self.storage = storage
        redact.register_model(storage)  # keys must never be printed, whatever echoes them
        if isinstance(storage, S3Storage):
            self.is_s3 = True
            self.root = "/".join(p for p in (storage.bucket, storage.prefix) if p)
            self._sse = storage.server_side_encryption
        else:
            self.is_s3 = False
            folder = Path(storage.path).expanduser()
            if not folder.is_absolute():
                folder = (base_dir or Path.cwd()) / folder
            self.root = os.path.abspath(folder).replace(os.sep, "/")
            self._sse = None

    @classmethod
    def from_config(cls, storage: S3Storage | LocalStorage, base_dir: Path | None = None) -> Lake:
        return cls(storage, base_dir)

    def __repr__(self) -> str:
        return f"Lake({self.uri()!r})"

    # ----------------------------------------------------------------- paths
    @cached_property
    def filesystem(self) -> pafs.FileSystem:
        """Built on first use, so a Lake can be described without network."""
        if not self.is_s3:
            return pafs.LocalFileSystem()
        return _s3_filesystem(self.storage)  # type: ignore[arg-type]

    def full_path(self, rel: str = "") -> str:
        """The path inside `filesystem` (what pyarrow/duckdb readers need)."""
        return f"{self.root}/{check_rel(rel)}" if rel else self.root

    def uri(self, rel: str = "") -> str:
        """s3://bucket/prefix/rel, or the absolute local path."""
        path = self.full_path(rel)
        return f"s3://{path}" if self.is_s3 else path

    # ------------------------------------------------------------------- I/O
    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self.full_path(check_rel(rel))
        try:
            if not self.is_s3:
                _atomic_local_write(path, data)
            elif self._sse:
                self._sse_writer().put(path, data)
            else:
                with self.filesystem.open_output_stream(path) as out:
                    out.write(data)
        except Exception as exc:
            raise self._error("write", rel, exc) from None

    def read_bytes(self, rel: str) -> bytes:
        try:
            with self.filesystem.open_input_stream(self.full_path(check_rel(rel))) as src:
                return src.read()
        except Exception as exc:
            raise self._error("read", rel, exc) from None

    def exists(self, rel: str) -> bool:
        try:
            info = self.filesystem.get_file_info(self.full_path(check_rel(rel)))
        except Exception as exc:
            raise self._error("check", rel, exc) from None
        return info.type == pafs.FileType.File

    def list(self, rel_prefix: str = "", recursive: bool = True) -> list[FileInfo]:
        """Files (not folders) under a folder, paths relative to the lake root,
        sorted. A folder that does not exist holds no files."""
        base = self.full_path(rel_prefix.strip("/"))
        try:
            infos = self.filesystem.get_file_info(pafs.FileSelector(base, recursive=recursive))
        except FileNotFoundError:
            self._check_root()  # a missing bucket is an error, a missing folder is not
            return []
        except Exception as exc:
            raise self._error("list", rel_prefix, exc) from None
        cut = len(self.root) + 1
        out = [
            FileInfo(i.path[cut:], i.size or 0, _utc(i.mtime))
            for i in infos
            if i.type == pafs.FileType.File
        ]
        return sorted(out, key=lambda f: f.path)

    def delete(self, rels: list[str] | tuple[str, ...]) -> None:
        """Delete files; ones already gone are fine (deleting is idempotent)."""
        for rel in rels:
            try:
                self.filesystem.delete_file(self.full_path(check_rel(rel)))
            except FileNotFoundError:
                pass
            except Exception as exc:
                raise self._error("delete", rel, exc) from None

    def prune_dirs(self, rels: list[str], stop: str = "") -> None:
        """Local only: remove folders left empty by `delete`, up to `stop`.
        rmdir refuses non-empty folders, so a concurrent writer is never hurt.
        (S3 has no folders; pyarrow may leave zero-byte 'dir/' markers there.)"""
        if self.is_s3:
            return
        floor = self.full_path(stop) if stop else self.root
        for folder in sorted({self.full_path(r).rsplit("/", 1)[0] for r in rels}, reverse=True):
            while folder.startswith(floor + "/"):
                try:
                    os.rmdir(folder)
                except OSError:
                    break
                folder = folder.rsplit("/", 1)[0]

    def incomplete_uploads(self, rel_prefix: str) -> list[PendingUpload]:
        """Multipart uploads started under a folder and never finished (S3 only)."""
        if not self.is_s3:
            return []
        bucket, _, key = self.full_path(rel_prefix.strip("/")).partition("/")
        out = []
        try:
            for page in self._s3_client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket,
                                                                                        Prefix=key + "/"):
                for u in page.get("Uploads", []):
                    out.append(PendingUpload(u["Key"][len(key) + 1:], u["UploadId"], _utc(u.get("Initiated"))))
        except Exception as exc:
            raise self._error("list the unfinished uploads of", rel_prefix, exc) from None
        return sorted(out, key=lambda u: (u.path, u.initiated))

    def abort_uploads(self, rel_prefix: str, uploads: list[PendingUpload]) -> None:
        """Abort unfinished multipart uploads (their parts are freed); gone ones are fine."""
        bucket, _, key = self.full_path(rel_prefix.strip("/")).partition("/")
        for u in uploads:
            try:
                self._s3_client.abort_multipart_upload(Bucket=bucket, Key=f"{key}/{u.path}", UploadId=u.upload_id)
            except Exception as exc:
                if "NoSuchUpload" not in str(exc):
                    raise self._error("abort the upload of", f"{rel_prefix}/{u.path}", exc) from None

    @cached_property
    def _s3_client(self) -> Any:
        """boto3 (pyarrow.fs cannot list multipart uploads)."""
        from lakeshift.lake.sse import s3_client

        return s3_client(self.storage)  # type: ignore[arg-type]

    def open_output_stream(self, rel: str, *, native: bool = False) -> pa.NativeFile:
        """A stream that creates the file when closed (S3: on completion of the
        upload). Failures while writing or closing are LakeErrors naming the URI.
        native=True: pyarrow's own stream where there is one (not for SSE uploads),
        without the Python wrapper that turns its errors into LakeErrors; the
        caller translates them (`error`). A Parquet writer calls write() dozens of
        times per row group, and through Python each call takes the GIL from the
        staging thread."""
        path = self.full_path(check_rel(rel))
        try:
            if not self.is_s3:
                self.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
                raw: Any = self.filesystem.open_output_stream(path)
            elif self._sse:
                raw = self._sse_writer().open(path)
            else:
                raw = self.filesystem.open_output_stream(path)
        except Exception as exc:
            raise self._error("write", rel, exc) from None
        if native and isinstance(raw, pa.NativeFile):
            return raw
        return pa.PythonFile(_GuardedStream(self, rel, raw), mode="w")

    def sync(self, rel: str) -> None:
        """Make a closed file durable before a manifest names it (local: fsync;
        S3: a completed upload already is)."""
        if self.is_s3:
            return
        path = self.full_path(check_rel(rel))
        try:
            _fsync(path)
            _fsync(os.path.dirname(path))
        except OSError as exc:
            raise self._error("sync", rel, exc) from None

    def size(self, rel: str) -> int:
        try:
            info = self.filesystem.get_file_info(self.full_path(check_rel(rel)))
        except Exception as exc:
            raise self._error("check", rel, exc) from None
        if info.type != pafs.FileType.File:
            raise LakeFileNotFound(f"{self.uri(rel)} does not exist")
        return info.size or 0

    def check_writable(self, rel_folder: str) -> None:
        """Write and delete a small file in a folder, so a lake this run cannot
        write (no permission, a path under a file, a read-only bucket policy)
        stops the run before it reads anything, not after a whole extract.
        What may stay behind in a folder that was empty: the folder (local), or
        the zero-byte 'folder/' marker pyarrow puts there on delete (S3)."""
        probe = f"{rel_folder}/.lakeshift-probe-{secrets.token_hex(6)}"
        try:
            self.write_bytes(probe, b"")
            self.delete([probe])
        except LakeError as exc:
            blocker = None if self.is_s3 else _blocking_file(self.full_path(rel_folder))
            if self.is_s3:
                way_out = "check the bucket, the prefix and that these credentials may put and delete objects there"
            elif blocker:
                way_out = f"{blocker} is a file, not a folder: point the storage's path elsewhere"
            else:
                way_out = "give this user write permission on it, or point the storage's path elsewhere"
            cause = str(exc).split(": ", 1)[-1]  # the reason, without the probe file's name
            raise LakeError(redact.redact(f"the lake folder {self.uri(rel_folder)} is not writable ({cause}); "
                                          f"nothing was read from the source; {way_out}")) from None

    # --------------------------------------------------------------- helpers
    def _sse_writer(self) -> SseWriter:
        writer = self.__dict__.get("_sse_client")
        if writer is None:
            from lakeshift.lake.sse import SseWriter

            writer = self.__dict__["_sse_client"] = SseWriter(self.storage)  # type: ignore[arg-type]
        return writer

    def _check_root(self) -> None:
        if not self.is_s3:
            return
        bucket = self.storage.bucket  # type: ignore[union-attr]
        try:
            info = self.filesystem.get_file_info(bucket)
        except Exception as exc:
            raise self._error("list", "", exc) from None
        if info.type == pafs.FileType.NotFound:
            raise LakeError(f"cannot use {self.uri()}: bucket {bucket!r} does not exist")

    def _error(self, action: str, rel: str, exc: BaseException) -> LakeError:
        uri = self.uri(rel) if rel else self.uri()
        if isinstance(exc, LakeError):
            return exc
        if isinstance(exc, FileNotFoundError) or _is_not_found(exc):
            return LakeFileNotFound(redact.redact(f"cannot {action} {uri}: not found"))
        return LakeError(redact.redact(f"cannot {action} {uri}: {describe_error(exc, self.storage)}"))


class _GuardedStream:
    """Write-only file over a lake stream (pyarrow's or the SSE upload) whose
    errors become LakeErrors: with S3 they may surface on any write or close."""

    def __init__(self, lake: Lake, rel: str, raw: Any) -> None:
        self.lake, self.rel, self.raw = lake, rel, raw

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.raw.tell()

    def flush(self) -> None:
        pass  # S3 streams upload when a part is full; close() finishes the file

    def write(self, data: Any) -> int:
        try:
            self.raw.write(data)
        except Exception as exc:
            raise self.lake._error("write", self.rel, exc) from None
        return memoryview(data).nbytes

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception as exc:
            raise self.lake._error("write", self.rel, exc) from None


def describe_error(exc: BaseException, storage: Any) -> str:
    """A short reason for an S3/local failure, from pyarrow's or boto3's error."""
    text = " ".join(str(exc).split())
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    endpoint = getattr(storage, "endpoint_url", None) or "AWS S3"
    bucket = getattr(storage, "bucket", "")
    if "NETWORK_CONNECTION" in text or type(exc).__name__ in ("EndpointConnectionError", "ConnectTimeoutError"):
        return f"cannot reach the S3 endpoint {endpoint} (is it running? check endpoint_url)"
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


def _is_not_found(exc: BaseException) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    return code in ("NoSuchKey", "404")


def _s3_filesystem(storage: S3Storage) -> pafs.S3FileSystem:
    region = storage.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region and not storage.endpoint_url:
        try:  # AWS answers with a redirect when the region is wrong; ask once instead
            region = pafs.resolve_s3_region(storage.bucket)
        except Exception:  # noqa: BLE001 - the first real request reports the problem
            region = None
    kwargs: dict[str, Any] = {
        "region": region or "us-east-1",
        "connect_timeout": 5,
        "request_timeout": 60,
        # Small files (manifests, state) go as one PUT; no multipart left behind by a crash before 5 MB.
        "allow_delayed_open": True,
    }
    if storage.endpoint_url:
        parts = urlsplit(storage.endpoint_url if "://" in storage.endpoint_url else f"https://{storage.endpoint_url}")
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme or "https"
    if storage.access_key_id is not None and storage.secret_access_key is not None:
        kwargs["access_key"] = storage.access_key_id.get_secret_value()
        kwargs["secret_key"] = storage.secret_access_key.get_secret_value()
        if storage.session_token is not None:
            kwargs["session_token"] = storage.session_token.get_secret_value()
    try:
        return pafs.S3FileSystem(**kwargs)
    except Exception as exc:
        raise LakeError(redact.redact(f"cannot open s3://{storage.bucket}: {describe_error(exc, storage)}")) from None


def _blocking_file(path: str) -> str | None:
    """The regular file a local folder path is, or runs through (/data/file/lake), if any."""
    folder = path
    while folder and folder != os.path.dirname(folder):
        if os.path.exists(folder):
            return folder if not os.path.isdir(folder) else None
        folder = os.path.dirname(folder)
    return None


def _atomic_local_write(path: str, data: bytes) -> None:
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.tmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync(folder)  # the rename itself must survive a power loss


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _utc(mtime: datetime | None) -> datetime:
    if mtime is None:
        return datetime.fromtimestamp(0, timezone.utc)
    return mtime.replace(tzinfo=timezone.utc) if mtime.tzinfo is None else mtime.astimezone(timezone.utc)
