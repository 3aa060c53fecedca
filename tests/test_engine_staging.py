"""The staging of the batch a run extracts (engine/staging.py): aborted exactly
once whichever way the task ends, never after its commit, and a target that
fails while the batch is written costs only the staging. No database."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from engine_kit import FakeLoader, local_lake
from lakeshift.batch import BatchFile, Manifest
from lakeshift.engine.staging import StagingSession
from lakeshift.errors import LoadError
from lakeshift.lake import TableLake

HEAD = Manifest(batch_id="20260101T000000000000Z-abcdef", pipeline="p1", table="items", source_table="shop.items",
                strategy="hybrid", mode="merge", columns=[], primary_key=["id"])
PART = BatchFile("part-0.parquet", 3, 100)
DONE = Manifest(**{**HEAD.__dict__, "files": [PART], "rows": 3})


class Streaming:
    """A staged load that takes a part's rows as they are written (like PostgreSQL)."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.aborts = 0

    def add_part(self, path: str, filesystem: Any, uri: str, file: BatchFile) -> None:
        raise AssertionError("a streaming load gets its parts as streams")

    def add_streamed_part(self, batches: Any, part: Any) -> None:
        for b in batches:
            self.rows.extend(b.column(0).to_pylist())
        part()

    def commit(self, manifest: Manifest) -> Any:
        raise AssertionError("not committed in these tests")

    def abort(self) -> None:
        self.aborts += 1


@pytest.fixture
def session(tmp_path: Path) -> StagingSession:
    lake = local_lake(tmp_path / "lake")
    return StagingSession(lake, TableLake(lake, "p1", "items"))


def begun(session: StagingSession, fail_parts: bool = False) -> Any:
    staged = FakeLoader(fail_staging=fail_parts).begin(HEAD, "items")
    session.begin(staged, HEAD.batch_id)
    return staged


def test_nothing_staged_nothing_aborted(session: StagingSession) -> None:
    with session:
        assert session.on_part is None and session.on_rows is None and not session.holds(DONE)
        session.end_extract("items")


def test_an_extract_that_fails_aborts_the_staging_once(session: StagingSession) -> None:
    with pytest.raises(RuntimeError, match="read failed"), session:
        staged = begun(session)
        session.on_part(PART)  # type: ignore[misc]
        raise RuntimeError("read failed")
    assert staged.aborts == 1 and staged.commits == 0 and not session.holds(DONE)


def test_an_explicit_abort_is_not_repeated_on_exit(session: StagingSession) -> None:
    with session:
        staged = begun(session)
        session.end_extract("items")
        session.abort()  # no new rows: no batch
        session.abort()
    assert staged.aborts == 1


def test_a_committed_batch_is_never_aborted(session: StagingSession) -> None:
    with session:
        staged = begun(session)
        session.on_part(PART)  # type: ignore[misc]
        session.end_extract("items")
        assert session.holds(DONE)
        assert session.commit(DONE).rows == 3
        assert not session.holds(DONE)
        session.abort()
    assert staged.parts == [PART] and staged.commits == 1 and staged.aborts == 0


def test_a_commit_that_fails_is_left_to_the_load(session: StagingSession) -> None:
    """The commit owns the staging from its start (the load cleans up after itself)."""
    with pytest.raises(AssertionError, match="a partial batch"), session:
        staged = begun(session)
        session.end_extract("items")
        session.commit(DONE)  # no part was staged
    assert staged.commits == 1 and staged.aborts == 0


def test_a_target_that_fails_while_staging_keeps_the_batch_for_the_lake(session: StagingSession,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    with session, caplog.at_level(logging.WARNING, "lakeshift.engine"):
        staged = begun(session, fail_parts=True)
        session.on_part(PART)  # type: ignore[misc]
        session.end_extract("items")  # no error: the extract succeeded
        assert not session.holds(DONE)  # loaded from the lake instead
    assert staged.aborts == 1 and staged.commits == 0
    assert "items: staging into the target failed while extracting (the target went away); the batch is kept " \
           "in the lake" in caplog.text


def test_a_part_cut_off_mid_stream_aborts_once_and_hides_the_feeder_error(session: StagingSession) -> None:
    """The writer was aborted inside a part: the staging's own complaint (the part
    never closed) must not replace the extract's error."""
    staged = Streaming()
    with pytest.raises(LoadError, match="the lake is full"), session:
        session.begin(staged, HEAD.batch_id)  # type: ignore[arg-type]
        assert session.on_rows is not None
        session.on_rows(pa.table({"id": [1, 2]}))
        raise LoadError("the lake is full")
    assert staged.rows == [1, 2] and staged.aborts == 1


def test_one_staging_per_session(session: StagingSession) -> None:
    with session:
        begun(session)
        with pytest.raises(RuntimeError, match="staged already"):
            begun(session)
