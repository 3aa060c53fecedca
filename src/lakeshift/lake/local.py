"""A lake in a local folder: atomic writes (temporary file, fsync, rename),
fsync before a manifest names a file, and empty folders removed after deletes."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from lakeshift.config.models import LocalStorage
from lakeshift.lake.storage import Lake, PendingUpload, check_rel


class LocalLake(Lake):
    """The lake in one local folder (a relative path resolved against base_dir, default the cwd)."""

    scheme = ""

    def __init__(self, storage: LocalStorage, base_dir: Path | None = None) -> None:
        super().__init__(storage)
        folder = Path(storage.path).expanduser()
        if not folder.is_absolute():
            folder = (base_dir or Path.cwd()) / folder
        self.root = os.path.abspath(folder).replace(os.sep, "/")

    @cached_property
    def filesystem(self) -> pafs.FileSystem:
        return pafs.LocalFileSystem()

    def write_bytes(self, rel: str, data: bytes) -> None:
        try:
            _atomic_write(self.full_path(check_rel(rel)), data)
        except Exception as exc:
            raise self.error("write", rel, exc) from None

    def _probe(self, rel: str) -> None:
        # Created and unlinked, not written atomically with fsyncs: nothing of it must
        # survive, and a no-change run probes every table (see docs/benchmarks.md).
        path = self.full_path(check_rel(rel))
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(path)
        except OSError as exc:
            raise self.error("write", rel, exc) from None

    def sync(self, rel: str) -> None:
        path = self.full_path(check_rel(rel))
        try:
            _fsync(path)
            _fsync(os.path.dirname(path))
        except OSError as exc:
            raise self.error("sync", rel, exc) from None

    def prune_dirs(self, rels: list[str], stop: str = "") -> None:
        """rmdir refuses non-empty folders, so a concurrent writer is never hurt."""
        floor = self.full_path(stop) if stop else self.root
        for folder in sorted({self.full_path(r).rsplit("/", 1)[0] for r in rels}, reverse=True):
            while folder.startswith(floor + "/"):
                try:
                    os.rmdir(folder)
                except OSError:
                    break
                folder = folder.rsplit("/", 1)[0]

    def incomplete_uploads(self, rel_prefix: str) -> list[PendingUpload]:
        return []  # a local file is written whole or not at all

    def abort_uploads(self, rel_prefix: str, uploads: list[PendingUpload]) -> None:
        pass

    def _open_output(self, path: str) -> Any:
        self.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        return self.filesystem.open_output_stream(path)

    def _check_root(self) -> None:
        pass  # a missing folder holds no files; the first write creates it

    def _unwritable_way_out(self, rel_folder: str) -> str:
        blocker = _blocking_file(self.full_path(rel_folder))
        if blocker:
            return f"{blocker} is a file, not a folder: point the storage's path elsewhere"
        return "give this user write permission on it, or point the storage's path elsewhere"


def _blocking_file(path: str) -> str | None:
    """The regular file a local folder path is, or runs through (/data/file/lake), if any."""
    folder = path
    while folder and folder != os.path.dirname(folder):
        if os.path.exists(folder):
            return folder if not os.path.isdir(folder) else None
        folder = os.path.dirname(folder)
    return None


def _atomic_write(path: str, data: bytes) -> None:
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
