"""Issue 10: rows above 16 MiB arrive whole.

The MySQL driver of connectorx took the server's max_allowed_packet as its
limit on one row, yet a server sends rows above its own limit: a MEDIUMTEXT
at its maximum (16 MiB - 1) is a row of more than 16 MiB, columns filled by
separate statements add up, and a value written while the limit was higher
stays. Such a row failed the whole table (`Packet is larger than
max_allowed_packet`). The reader now accepts rows up to 1 GiB (the protocol's
largest max_allowed_packet); above that, one line names the columns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.cli import run_cli
from kit.config import build_config, set_source
from kit.lake import local_storage
from kit.servers import MariaDBServer, start_mariadb
from kit.targets import make_target
from source_kit import make_reader, run, table_config

from conftest import mysql_exec
from lakeshift.errors import SourceError

pytestmark = pytest.mark.slow  # a throwaway MariaDB and 40 MB rows

MEDIUMTEXT_MAX = (1 << 24) - 1
BLOB_BYTES = 40_000_000  # a LONGBLOB above the server's 16 MiB default
FULL_SYNC = table_config(cdc_strategy="full_sync")


def digests(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """(id, then length and md5 of each value): compared without printing 40 MB."""
    out = []
    for row in rows:
        cells: list[Any] = [row[0]]
        for v in row[1:]:
            data = v.encode() if isinstance(v, str) else bytes(v) if v is not None else None
            cells.append(None if data is None else (len(data), hashlib.md5(data).hexdigest()))
        out.append(tuple(cells))
    return out


def test_rows_above_the_servers_own_limit_are_read(mysql: Any, mysql_db: str) -> None:
    """On the shared server (max_allowed_packet 16 MiB): a MEDIUMTEXT at its
    maximum, and two 10 MB MEDIUMTEXTs in one row, written by two statements."""
    mysql_exec(mysql, "CREATE TABLE big (id INT PRIMARY KEY, m MEDIUMTEXT, m2 MEDIUMTEXT)",
               f"INSERT INTO big VALUES (1, REPEAT('x', {MEDIUMTEXT_MAX}), NULL), (2, REPEAT('a', 10000000), NULL), "
               "(3, '', 'small')",
               "UPDATE big SET m2 = REPEAT('b', 10000000) WHERE id = 2")
    reader = make_reader(mysql_db)
    try:
        table, _, _ = run(reader, "big", FULL_SYNC)
    finally:
        reader.close()
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[0]["m"] == "x" * MEDIUMTEXT_MAX and rows[0]["m2"] is None
    assert rows[1]["m"] == "a" * 10_000_000 and rows[1]["m2"] == "b" * 10_000_000
    assert rows[2] == {"id": 3, "m": "", "m2": "small"}


def test_a_row_above_what_the_driver_reads_fails_in_one_line_naming_the_columns(
        mysql: Any, mysql_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the reader's limit (1 GiB; lowered here to 16 MiB to have such a
    row at hand) the table fails in one line naming the large columns."""
    import lakeshift.source.cx as cx

    monkeypatch.setattr(cx, "MAX_PACKET", 1 << 24)
    mysql_exec(mysql, "CREATE TABLE big (id INT PRIMARY KEY, note VARCHAR(10), m MEDIUMTEXT, b LONGBLOB)",
               f"INSERT INTO big VALUES (1, 'a', REPEAT('x', {MEDIUMTEXT_MAX}), NULL)")
    reader = make_reader(mysql_db)
    try:
        with pytest.raises(SourceError) as err:
            run(reader, "big", FULL_SYNC)
    finally:
        reader.close()
    msg = str(err.value)
    assert "\n" not in msg and f"table {mysql_db}.big" in msg, msg
    assert "a row is larger than 16,777,216 bytes, the most the MySQL driver reads (its max_allowed_packet)" in msg
    assert "column(s) that can hold such values: m (mediumtext), b (longblob)" in msg


@pytest.fixture(scope="module")
def big_server() -> Iterator[MariaDBServer]:
    """A throwaway MariaDB holding a 40 MB LONGBLOB, written while its
    max_allowed_packet was 256 MiB, then put back to the 16 MiB default."""
    server = start_mariadb()
    try:
        with server.connect() as conn:
            mysql_exec(conn, "SET GLOBAL max_allowed_packet = 268435456")
        with server.connect() as conn:  # a new session takes the new limit
            mysql_exec(conn, "CREATE DATABASE shop",
                       "CREATE TABLE shop.files (id INT PRIMARY KEY, name VARCHAR(20), body LONGBLOB, doc MEDIUMTEXT)",
                       f"INSERT INTO shop.files VALUES (1, 'blob', REPEAT(x'C3', {BLOB_BYTES}), NULL), "
                       f"(2, 'text', NULL, REPEAT('é', {MEDIUMTEXT_MAX // 2})), (3, 'small', x'00ff', '')",
                       "SET GLOBAL max_allowed_packet = 16777216")
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_a_40_mb_longblob_syncs_end_to_end(kind: str, big_server: MariaDBServer, tmp_path: Path,
                                           request: pytest.FixtureRequest) -> None:
    tgt = make_target(kind, request, tmp_path)
    config = build_config(tmp_path / "config", "shop", tgt.config, local_storage(tmp_path / "lake"),
                          {"files": {"cdc_strategy": "full_sync"}})
    set_source(config, port=big_server.port, username="root")
    result = run_cli(config, "sync", "pipeline", "-p", "p1", "-t", "files")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    with big_server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@global.max_allowed_packet, id, name, body, doc FROM shop.files ORDER BY id")
        fetched = cur.fetchall()
    assert fetched[0][0] == 16777216 and len(fetched[0][3]) == BLOB_BYTES
    want = digests([r[1:] for r in fetched])
    assert digests(tgt.raw_rows("files", ["id", "name", "body", "doc"], '"id"')) == want
