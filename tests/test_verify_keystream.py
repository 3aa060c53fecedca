"""Keys-only verify's whole-table first pass and hard_deletes' streamed key comparison
(verify/keystream.py) against real MariaDB, PostgreSQL and DuckDB: an identical first pass
must not hide a difference, and the streamed merge finds gone and returning keys exactly,
also at its chunk boundaries, for negative keys and BIGINT UNSIGNED's maximum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import mysql_exec
from kit.targets import make_target
from verify_kit import example_ids, pipeline_config, tamper, verify

TARGETS = ["postgres", "duckdb"]


@pytest.mark.parametrize("kind", TARGETS)
def test_whole_table_pass_still_finds_single_and_cancelling_changes(kind: str, mysql: Any, mysql_db: str,
                                                                     tmp_path: Path, cli: Any,
                                                                     request: pytest.FixtureRequest) -> None:
    mysql_exec(mysql, "CREATE TABLE w (id INT PRIMARY KEY)", "INSERT INTO w SELECT seq FROM seq_10_to_2000",
               "INSERT INTO w VALUES (1), (5), (6)",
               "CREATE TABLE t (code VARCHAR(20) PRIMARY KEY)",
               "INSERT INTO t SELECT CONCAT('k ', seq) FROM seq_1_to_1000")
    target = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, target, {"w": {"cdc_strategy": "full_sync"},
                                                          "t": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config).exit_code == 0
    same = verify(config, ["w", "t"])
    assert all(r.equal and r.windows_differing == 0 for r in same.values())
    assert (same["w"].source_rows, same["w"].target_rows) == (1994, 1994)
    # one row missing in the middle, one extra: the whole-table pass differs, the windows find them
    tamper(target, "DELETE FROM w WHERE id = 1000", "DELETE FROM t WHERE code = 'k 500'",
           "INSERT INTO t VALUES ('k 5000')")
    r = verify(config, ["w", "t"])
    assert (r["w"].missing, r["w"].extra, example_ids(r["w"], "missing")) == (1, 0, [1000])
    assert (r["t"].missing, r["t"].extra) == (1, 1)
    assert r["t"].examples == {"missing": [{"code": "k 500"}], "extra": [{"code": "k 5000"}]}
    # {1, 5, 6} -> {2, 3, 7} (after 1000 is put back): the same count, sum and sum of squares over the
    # whole table; only the mixed checksum of the first pass sees it
    tamper(target, "INSERT INTO w VALUES (1000)", "DELETE FROM w WHERE id IN (1, 5, 6)",
           "INSERT INTO w VALUES (2), (3), (7)")
    r = verify(config, ["w"])["w"]
    assert (r.missing, r.extra) == (3, 3), r
    assert (example_ids(r, "missing"), example_ids(r, "extra")) == ([1, 5, 6], [2, 3, 7])


def _gaps(config: Path, table: str) -> Any:
    from lakeshift.config.loader import load_config
    from lakeshift.load import open_target
    from lakeshift.source import MySQLReader
    from lakeshift.verify import key_gaps

    cfg = load_config(str(config))
    reader = MySQLReader(cfg.source("src"), cfg.settings)
    loader = open_target(cfg.target("dst"), cfg.settings)
    try:
        return key_gaps(reader, reader.describe(table), loader, table, ["id"])
    finally:
        loader.close()
        reader.close()


@pytest.mark.parametrize("kind", TARGETS)
def test_streamed_key_gaps_at_chunk_boundaries_and_extremes(kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                            cli: Any, request: pytest.FixtureRequest,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.verify import keystream

    calls: list[str] = []
    compare = keystream.compare_ranges
    monkeypatch.setattr(keystream, "compare_ranges", lambda *a: calls.append("merge") or compare(*a))
    monkeypatch.setattr(keystream, "CHUNK", 7)  # many ranges: a boundary every 7 keys on each side
    top = 18446744073709551615
    mysql_exec(mysql, "CREATE TABLE u (id BIGINT UNSIGNED PRIMARY KEY, v DATETIME(6) NOT NULL DEFAULT NOW(6))",
               "INSERT INTO u (id) SELECT seq FROM seq_1_to_100",
               f"INSERT INTO u (id) VALUES ({top}), ({top - 1}), (9223372036854775807), (9223372036854775808), (0)",
               "CREATE TABLE s (id BIGINT PRIMARY KEY, v DATETIME(6) NOT NULL DEFAULT NOW(6))",
               "INSERT INTO s (id) SELECT CAST(seq AS SIGNED) - 60 FROM seq_1_to_100",
               "INSERT INTO s (id) VALUES (-9223372036854775808), (9223372036854775807)")
    target = make_target(kind, request, tmp_path)
    hybrid = {"cdc_strategy": "hybrid", "cdc_id_column": "id", "cdc_timestamp_column": "v"}
    config = pipeline_config(tmp_path, mysql_db, target, {"u": dict(hybrid), "s": dict(hybrid)})
    assert cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config).exit_code == 0
    for table in ("u", "s"):
        g = _gaps(config, table)
        assert (g.gone.num_rows, g.back, g.target_rows) == (0, [], 105 if table == "u" else 102)
    # gone from MySQL: the first key, chunk boundaries (7th, 8th, 14th), the largest keys
    mysql_exec(mysql, f"DELETE FROM u WHERE id IN (0, 6, 7, 13, 14, 50, {top}, 9223372036854775808)",
               "DELETE FROM s WHERE id IN (-9223372036854775808, -54, -53, -1, 0, 39, 9223372036854775807)")
    # only in MySQL (the target lost them): they come back
    tamper(target, f"DELETE FROM u WHERE id IN (1, 21, {top - 1})", "DELETE FROM s WHERE id IN (-59, 20)")
    u, s = _gaps(config, "u"), _gaps(config, "s")
    assert str(u.gone.schema.field("id").type) in ("uint64", "decimal128(20, 0)")
    assert sorted(int(v) for v in u.gone.column("id").to_pylist()) == [0, 6, 7, 13, 14, 50, 9223372036854775808, top]
    assert sorted(u.back) == [(1,), (21,), (top - 1,)]
    assert u.target_rows == 102
    assert sorted(s.gone.column("id").to_pylist()) == [-9223372036854775808, -54, -53, -1, 0, 39,
                                                        9223372036854775807]
    assert sorted(s.back) == [(-59,), (20,)]
    assert calls == ["merge"] * 4  # every comparison went through the stream


@pytest.mark.parametrize("kind", TARGETS)
def test_streamed_key_gaps_skip_soft_deleted_rows(kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                                  request: pytest.FixtureRequest) -> None:
    """A key the target marked deleted (hard_deletes: soft) is not live: gone once, then back when it returns."""
    mysql_exec(mysql, "CREATE TABLE s (id INT PRIMARY KEY, v INT)", "INSERT INTO s SELECT seq, seq FROM seq_1_to_50")
    target = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, target, {"s": {"cdc_strategy": "id_only", "cdc_id_column": "id",
                                                                "hard_deletes": "soft"}})
    assert cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config).exit_code == 0
    mysql_exec(mysql, "DELETE FROM s WHERE id IN (10, 11)")
    assert cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config).exit_code == 0
    g = _gaps(config, "s")
    assert (g.gone.num_rows, g.back, g.target_rows) == (0, [], 48)
    mysql_exec(mysql, "INSERT INTO s VALUES (10, 0)")
    g = _gaps(config, "s")
    assert (g.gone.num_rows, g.back, g.target_rows) == (0, [(10,)], 48)


def test_compare_ranges_of_random_chunks() -> None:
    """The range comparison itself (no database): random chunkings of MySQL's keys, duplicates
    on the target's side, keys only on one side at either end: the two set differences."""
    import bisect
    import random

    import pyarrow as pa

    from lakeshift.verify.keystream import compare_ranges

    rnd = random.Random(12)

    def chunks(keys: list[int]) -> Any:
        i = 0
        while i < len(keys):
            j = i + rnd.randint(1, 9)
            yield pa.array(keys[i:j], pa.int64())
            i = j

    for trial in range(400):
        base = sorted(rnd.sample(range(-300, 300), rnd.randint(0, 80)))
        src = [k for k in base if rnd.random() > 0.1]
        tgt = [k for k in base if rnd.random() > 0.1]
        if trial % 4 == 0 and tgt:
            tgt = sorted(tgt + rnd.choices(tgt, k=3))

        def between(lo: Any, hi: Any, tgt: list[int] = tgt) -> pa.Array:
            i = 0 if lo is None else bisect.bisect_right(tgt, lo)
            j = len(tgt) if hi is None else bisect.bisect_right(tgt, hi)
            part = tgt[i:j]
            if trial % 3 == 0:
                rnd.shuffle(part)  # PostgreSQL's keys come in the index's order, not relied on
            return pa.array(part, pa.int64())

        gone, back, rows = compare_ranges(chunks(src), between, "t", 1 + trial % 3)  # ranges asked at once
        assert sorted(k for g in gone for k in g.to_pylist()) == sorted(set(tgt) - set(src)), trial
        assert sorted(k for b in back for k in b.to_pylist()) == sorted(set(src) - set(tgt)), trial
        assert rows == len(tgt)


def test_compare_ranges_refuses_keys_out_of_order() -> None:
    import pyarrow as pa

    from lakeshift.errors import SourceError
    from lakeshift.verify.keystream import compare_ranges

    def nothing(lo: Any, hi: Any) -> pa.Array:
        return pa.array([], pa.int64())

    with pytest.raises(SourceError, match="ascending order"):
        compare_ranges(iter([pa.array([1, 3], pa.int64()), pa.array([2], pa.int64())]), nothing, "t")
    with pytest.raises(SourceError, match="ascending order"):
        compare_ranges(iter([pa.array([1, 2], pa.int64()), pa.array([2, 5], pa.int64())]), nothing, "t")


@pytest.mark.parametrize("kind", TARGETS)
def test_streamed_key_gaps_refuse_a_null_key_in_the_target(kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                           cli: Any, request: pytest.FixtureRequest) -> None:
    from lakeshift.errors import SourceError

    mysql_exec(mysql, "CREATE TABLE n (id INT PRIMARY KEY, v DATETIME(6) NOT NULL DEFAULT NOW(6))",
               "INSERT INTO n (id) SELECT seq FROM seq_1_to_20")
    target = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, target, {"n": {"cdc_strategy": "hybrid", "cdc_id_column": "id",
                                                                "cdc_timestamp_column": "v"}})
    assert cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config).exit_code == 0
    key = "id"
    if kind == "postgres":
        tamper(target, "ALTER TABLE n DROP CONSTRAINT IF EXISTS n_pkey", "ALTER TABLE n ALTER COLUMN id DROP NOT NULL")
    else:
        tamper(target, "CREATE TABLE n2 AS SELECT * FROM n", "DROP TABLE n", "ALTER TABLE n2 RENAME TO n")
    tamper(target, "INSERT INTO n (id, v) VALUES (NULL, TIMESTAMP '2026-01-01 00:00:00')")
    with pytest.raises(SourceError, match=f"key column '{key}' holds NULLs in the target"):
        _gaps(config, "n")
