"""One filesystem layer for the lake, over pyarrow.fs: `Lake` is the interface
and what both kinds share; local.py (a folder) and s3.py (S3 and S3-compatible
stores) are the two kinds, chosen once by `Lake.from_config`. Paths given to a
lake are relative to its root (bucket/prefix, or the local folder) and always
use '/'.

Writes are atomic: an S3 object appears only when its PUT (or multipart
upload) completes; a local file is written to a temporary name, fsynced and
renamed over the target. Every failure becomes a one-line LakeError naming
the URI; keys never appear in it (they are registered with `redact`)."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.fs as pafs

from lakeshift import redact
from lakeshift.config.models import LocalStorage, S3Storage
from lakeshift.errors import LakeError
from lakeshift.lake.errors import LakeFileNotFound, lake_error

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


class Lake(ABC):
    """The lake root of one storage connection."""

    scheme: ClassVar[str]  # what uri() puts before the path
    storage: S3Storage | LocalStorage
    root: str  # the root inside `filesystem`, without a trailing '/'

    def __init__(self, storage: S3Storage | LocalStorage) -> None:
        self.storage = storage
        redact.register_model(storage)  # keys must never be printed, whatever echoes them

    @staticmethod
    def from_config(storage: S3Storage | LocalStorage, base_dir: Path | None = None) -> Lake:
        """The lake of a storage; a relative local path is resolved against base_dir (default: cwd)."""
        if isinstance(storage, S3Storage):
            from lakeshift.lake.s3 import S3Lake

            return S3Lake(storage)
        from lakeshift.lake.local import LocalLake

        return LocalLake(storage, base_dir)

    def __repr__(self) -> str:
        return f"Lake({self.uri()!r})"

    # ----------------------------------------------------------------- what a kind provides
    @property
    @abstractmethod
    def filesystem(self) -> pafs.FileSystem:
        """Built on first use, so a Lake can be described without network."""

    @abstractmethod
    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole file atomically."""

    @abstractmethod
    def sync(self, rel: str) -> None:
        """Make a closed file durable before a manifest names it."""

    @abstractmethod
    def prune_dirs(self, rels: list[str], stop: str = "") -> None:
        """Remove folders left empty by `delete`, up to `stop` (where there are folders)."""

    @abstractmethod
    def incomplete_uploads(self, rel_prefix: str) -> list[PendingUpload]:
        """Multipart uploads started under a folder and never finished."""

    @abstractmethod
    def abort_uploads(self, rel_prefix: str, uploads: list[PendingUpload]) -> None:
        """Abort unfinished multipart uploads (their parts are freed); gone ones are fine."""

    @abstractmethod
    def _open_output(self, path: str) -> Any:
        """A raw output stream for a full path (see open_output_stream)."""

    @abstractmethod
    def _check_root(self) -> None:
        """Raise when the root itself is missing (listing a missing folder is not an error)."""

    @abstractmethod
    def _unwritable_way_out(self, rel_folder: str) -> str:
        """What to do when `rel_folder` cannot be written (check_writable)."""

    # ----------------------------------------------------------------- paths
    def full_path(self, rel: str = "") -> str:
        """The path inside `filesystem` (what pyarrow/duckdb readers need)."""
        return f"{self.root}/{check_rel(rel)}" if rel else self.root

    def uri(self, rel: str = "") -> str:
        """s3://bucket/prefix/rel, or the absolute local path."""
        return self.scheme + self.full_path(rel)

    # ------------------------------------------------------------------- I/O
    def read_bytes(self, rel: str) -> bytes:
        try:
            with self.filesystem.open_input_stream(self.full_path(check_rel(rel))) as src:
                return src.read()
        except Exception as exc:
            raise self.error("read", rel, exc) from None

    def exists(self, rel: str) -> bool:
        return self._info(rel).type == pafs.FileType.File

    def size(self, rel: str) -> int:
        info = self._info(rel)
        if info.type != pafs.FileType.File:
            raise LakeFileNotFound(f"{self.uri(rel)} does not exist")
        return info.size or 0

    def _info(self, rel: str) -> pafs.FileInfo:
        try:
            return self.filesystem.get_file_info(self.full_path(check_rel(rel)))
        except Exception as exc:
            raise self.error("check", rel, exc) from None

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
            raise self.error("list", rel_prefix, exc) from None
        cut = len(self.root) + 1
        out = [FileInfo(i.path[cut:], i.size or 0, utc(i.mtime)) for i in infos if i.type == pafs.FileType.File]
        return sorted(out, key=lambda f: f.path)

    def delete(self, rels: list[str] | tuple[str, ...]) -> None:
        """Delete files; ones already gone are fine (deleting is idempotent)."""
        for rel in rels:
            try:
                self.filesystem.delete_file(self.full_path(check_rel(rel)))
            except FileNotFoundError:
                pass
            except Exception as exc:
                raise self.error("delete", rel, exc) from None

    def open_output_stream(self, rel: str, *, native: bool = False) -> pa.NativeFile:
        """A stream that creates the file when closed (S3: on completion of the
        upload). Failures while writing or closing are LakeErrors naming the URI.
        native=True: pyarrow's own stream where there is one (not for SSE uploads),
        without the Python wrapper that turns its errors into LakeErrors; the
        caller translates them (`error`). A Parquet writer calls write() dozens of
        times per row group, and through Python each call takes the GIL from the
        staging thread."""
        try:
            raw = self._open_output(self.full_path(check_rel(rel)))
        except Exception as exc:
            raise self.error("write", rel, exc) from None
        if native and isinstance(raw, pa.NativeFile):
            return raw
        return pa.PythonFile(_GuardedStream(self, rel, raw), mode="w")

    def check_writable(self, rel_folder: str) -> None:
        """Write and delete a small file in a folder, so a lake this run cannot
        write (no permission, a path under a file, a read-only bucket policy)
        stops the run before it reads anything, not after a whole extract.
        What may stay behind in a folder that was empty: the folder (local), or
        the zero-byte 'folder/' marker pyarrow puts there on delete (S3)."""
        try:
            self._probe(f"{rel_folder}/.lakeshift-probe-{secrets.token_hex(6)}")
        except LakeError as exc:
            cause = str(exc).split(": ", 1)[-1]  # the reason, without the probe file's name
            raise LakeError(redact.redact(f"the lake folder {self.uri(rel_folder)} is not writable ({cause}); "
                                          f"nothing was read from the source; "
                                          f"{self._unwritable_way_out(rel_folder)}")) from None

    def _probe(self, rel: str) -> None:
        """Write an empty file at `rel` and delete it (check_writable)."""
        self.write_bytes(rel, b"")
        self.delete([rel])

    def error(self, action: str, rel: str, exc: BaseException) -> LakeError:
        """The one-line LakeError for `action` on `rel` failing with `exc`."""
        return lake_error(action, self.uri(rel) if rel else self.uri(), exc, self.storage)


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
            raise self.lake.error("write", self.rel, exc) from None
        return memoryview(data).nbytes

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception as exc:
            raise self.lake.error("write", self.rel, exc) from None


def utc(mtime: datetime | None) -> datetime:
    """A listing's or an upload's time as timezone-aware UTC (epoch when unknown)."""
    if mtime is None:
        return datetime.fromtimestamp(0, timezone.utc)
    return mtime.replace(tzinfo=timezone.utc) if mtime.tzinfo is None else mtime.astimezone(timezone.utc)
