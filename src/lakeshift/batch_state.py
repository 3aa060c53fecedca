"""What becomes of each batch of a table: the one place that says which batches
the next run loads and why the others are not loaded. The sync, `watermark get`,
`--dry-run`, `s3clean` and `batches list` all ask it.

From the manifests in the lake and the rows of the target's `_lakeshift_loads`:

- loaded:     recorded as loaded (in the same transaction as its rows);
- skipped:    recorded by `lakeshift batches skip` (mode 'skipped'): never loaded;
- sample:     written by `--limit` on a full_sync table: a few rows of a snapshot, never loaded
              (it would replace the whole table with them);
- superseded: not recorded, and a newer full_sync snapshot, loaded or about to be, replaces the
              whole table: loading this one would only be undone;
- pending:    the rest: the next run loads these, oldest first.

Pure: no I/O, no imports of lake/load."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from lakeshift.batch import Manifest

SKIPPED_MODE = "skipped"  # the `mode` of a skip record in _lakeshift_loads
State = Literal["loaded", "pending", "superseded", "sample", "skipped"]
NEVER_LOADED: tuple[State, ...] = ("superseded", "sample", "skipped")


@dataclass(frozen=True)
class BatchStatus:
    manifest: Manifest
    state: State
    record: Any = None  # the batch's row of _lakeshift_loads (a LoadRecord), when it has one
    superseded_by: str | None = None  # the newest snapshot, for a superseded batch

    @property
    def batch_id(self) -> str:
        return self.manifest.batch_id

    @property
    def loaded_at(self) -> datetime | None:
        """When it was loaded (or skipped)."""
        return getattr(self.record, "loaded_at", None)

    @property
    def reason(self) -> str | None:
        """Why a batch is not loaded (None for loaded and pending ones)."""
        if self.state == "skipped":
            return getattr(self.record, "note", None) or "skipped"
        if self.state == "superseded":
            return f"superseded by snapshot {self.superseded_by}"
        if self.state == "sample":
            return "a sample (--limit on full_sync): never loaded"
        return None


def _replaces(manifest: Manifest | None, record: Any) -> bool:
    """A full_sync snapshot that replaces the whole table: loaded, or in the lake and
    neither a sample nor skipped. (A record's mode wins: its manifest may be cleaned.)"""
    mode = getattr(record, "mode", None)
    if mode is not None:
        return bool(mode == "replace")
    return manifest is not None and manifest.mode == "replace" and not manifest.sample


def classify(manifests: Sequence[Manifest], records: Mapping[str, Any]) -> list[BatchStatus]:
    """Every manifest's state, oldest first. `records`: batch id -> its row of
    `_lakeshift_loads` (None when only the id is known: loaded, mode from the manifest)."""
    by_id = {m.batch_id: m for m in manifests}
    snapshots = sorted(b for b in set(by_id) | set(records) if _replaces(by_id.get(b), records.get(b)))
    out = []
    for m in sorted(manifests, key=lambda m: m.batch_id):
        if m.batch_id in records:
            record = records[m.batch_id]
            skipped = getattr(record, "mode", None) == SKIPPED_MODE
            out.append(BatchStatus(m, "skipped" if skipped else "loaded", record))
        elif m.sample:
            out.append(BatchStatus(m, "sample"))
        elif bisect.bisect_right(snapshots, m.batch_id) < len(snapshots):
            out.append(BatchStatus(m, "superseded", superseded_by=snapshots[-1]))
        else:
            out.append(BatchStatus(m, "pending"))
    return out


def pending(statuses: Sequence[BatchStatus]) -> list[Manifest]:
    """What the next run loads, oldest first."""
    return [s.manifest for s in statuses if s.state == "pending"]


def count_by_state(statuses: Sequence[BatchStatus], states: Sequence[State] = NEVER_LOADED) -> str:
    """E.g. '2 superseded, 1 sample' ('' when there are none)."""
    counts = [(state, sum(1 for s in statuses if s.state == state)) for state in states]
    return ", ".join(f"{n} {state}" for state, n in counts if n)
