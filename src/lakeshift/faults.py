"""Named crash points for the fault-injection tests.

`LAKESHIFT_FAULT=<point>` makes the process SIGKILL itself when it reaches that
point, exactly like a crash (no cleanup, no except/finally). Unset in normal
use: then `checkpoint` is a dictionary lookup and nothing else."""

from __future__ import annotations

import os
import signal

# part_closed: every time the extract closes a Parquet part (so the first hit is
# mid-extract when a batch has several parts)
# after_delete_manifest: a delete batch (hard_deletes, verify --repair) is in the lake, not loaded yet
# after_repair_manifest: verify --repair's batch of re-read rows is in the lake, not loaded yet
POINTS = ("part_closed", "after_parts", "after_manifest", "after_delete_manifest", "after_repair_manifest",
          "in_load_transaction", "after_load_commit")


def checkpoint(point: str) -> None:
    if os.environ.get("LAKESHIFT_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
