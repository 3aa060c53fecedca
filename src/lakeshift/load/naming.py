"""Names lakeshift gives the tables and constraints it makes for a batch."""

from __future__ import annotations

import hashlib

from lakeshift.batch import Manifest

STAGE_PREFIX = "_ls_stage_"


def stage_name(manifest: Manifest) -> str:
    """The staging table of one batch: the same name on every target and in every
    run, so a run that died leaves a table the next one recognises."""
    digest = hashlib.sha256(f"{manifest.pipeline}\x1f{manifest.table}\x1f{manifest.batch_id}".encode()).hexdigest()
    return STAGE_PREFIX + digest[:24]


def pkey_name(table: str) -> str:
    """The name PostgreSQL gives the primary key of CREATE TABLE <table>: <table>_pkey,
    the table part cut to fit 63 bytes."""
    head = table.encode("utf-8")[:63 - len("_pkey")].decode("utf-8", "ignore")
    return head + "_pkey"
