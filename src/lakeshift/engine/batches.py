"""`lakeshift batches list|skip`: a table's batches with their state, and the way
out for a batch that can never load (validation, a value the target refuses,
a damaged part): record it in the target as skipped, so runs go on without it.
The lake keeps its files; nothing is deleted."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from lakeshift.batch_state import BatchStatus, classify
from lakeshift.engine.tables import TableHandle
from lakeshift.errors import ConfigError, LakeshiftError
from lakeshift.load.state import NOTE_MAX_CHARS, LoadRecord


class SkipRefused(LakeshiftError):
    """The batch cannot be skipped."""


@dataclass(frozen=True)
class Skipped:
    batch: BatchStatus  # as it was before the skip
    record: LoadRecord  # the skip record written to _lakeshift_loads
    incremental: bool  # its rows are missing from the target until they are read again


def table_batches(h: TableHandle) -> list[BatchStatus]:
    """Every batch in the table's lake folder with its state, oldest first."""
    with h.loader() as loader:
        records = loader.loaded_batches(h.pipeline.name, h.name)
    return classify(h.table_lake.manifests(), records)


def skip_batch(h: TableHandle, batch_id: str, reason: str) -> Skipped:
    """Record `batch_id` as skipped in the target (under the table's load lock, so
    no run loads it meanwhile). Refuses an unknown batch and one already loaded."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ConfigError("--reason must say why the batch is skipped (it is recorded with the skip)")
    if len(reason) > NOTE_MAX_CHARS:
        raise ConfigError(f"--reason is {len(reason)} characters; at most {NOTE_MAX_CHARS} are recorded")
    where = f"{h.pipeline.key}.{h.name}"
    with h.loader() as loader:
        loader.ensure_state_tables()
        with loader.lock(h.pipeline.name, h.name):
            records = loader.loaded_batches(h.pipeline.name, h.name)
            found = {s.batch_id: s for s in classify(h.table_lake.manifests(), records)}
            batch = found.get(batch_id)
            if batch is None:
                raise SkipRefused(f"{where}: no batch {batch_id!r} in {h.table_lake.uri()}; "
                                  f"`lakeshift batches list -p {h.pipeline.key} -t {h.name}` shows its batches")
            if batch.state == "loaded":
                raise SkipRefused(f"{where}: batch {batch_id} was loaded at {batch.loaded_at}; a loaded batch "
                                  "cannot be skipped")
            if batch.state == "skipped":
                raise SkipRefused(f"{where}: batch {batch_id} is already skipped ({batch.reason})")
            record = loader.record_skip(batch.manifest, h.pipeline.name, h.name, h.target_table, reason)
    return Skipped(batch, record,
                   incremental=batch.state == "pending" and batch.manifest.mode not in ("replace", "delete"))


def reread_commands(h: TableHandle, skipped: Skipped) -> list[str]:
    """How to read a skipped incremental batch's rows again: the watermark back to where
    the batch started (the next run reads from there on), or from the very start."""
    where = f"-p {h.pipeline.key} -t {h.name}"
    low = skipped.batch.manifest.watermark_low
    out = []
    if low is not None and (low.timestamp is not None or low.id is not None):
        args = "".join(f" --{k} {shlex.quote(str(v))}" for k, v in (("timestamp", low.timestamp), ("id", low.id))
                       if v is not None)
        out.append(f"lakeshift watermark set {where}{args}")
    out.append(f"lakeshift watermark reset {where}")
    return out
