"""verify --deep compares the Arrow-compared columns (TIME here) in a merge
join of both sides' streams ordered by key hash, one chunk at a time: with
chunks of a few rows, changes on either side of every chunk boundary, and rows
missing or extra that shift the two streams against each other, are found
exactly; and the merge itself pairs every common key once, whatever the chunking."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from kit.targets import make_target
from verify_kit import example_ids, pipeline_config, tamper, verify

from conftest import mysql_exec
from lakeshift.verify import arrow_cols


def _batches(keys: list[int], sizes: list[int]) -> Any:
    i = 0
    for n in sizes:
        yield pa.RecordBatch.from_arrays([pa.array(keys[i:i + n], pa.int64())], names=["k"])
        i += n


@pytest.mark.parametrize("seed", range(20))
def test_merge_pairs_every_common_key_once_whatever_the_chunks(seed: int) -> None:
    rnd = random.Random(seed)
    universe = sorted(rnd.sample(range(-1000, 1000), 300))
    a = [k for k in universe if rnd.random() < 0.8]
    b = [k for k in universe if rnd.random() < 0.8]

    def sizes(n: int) -> list[int]:
        out = []
        while n > 0:
            out.append(min(n, rnd.randint(0, 9)))  # empty batches too
            n -= out[-1]
        return out

    seen: list[int] = []
    for s, t in arrow_cols.aligned(_batches(a, sizes(len(a))), _batches(b, sizes(len(b)))):
        assert s.num_rows + t.num_rows > 0
        seen += sorted(set(s.column("k").to_pylist()) & set(t.column("k").to_pylist()))
    assert seen == sorted(set(a) & set(b))


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
@pytest.mark.parametrize("key_type", ["INT", "VARCHAR(12)"])  # the key itself / its md5 hash orders the streams
def test_changes_at_every_chunk_boundary_are_found(kind: str, key_type: str, mysql: Any, mysql_db: str,
                                                   tmp_path: Path, cli: Any, request: pytest.FixtureRequest,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    mysql_exec(mysql, f"CREATE TABLE m (id {key_type} NOT NULL PRIMARY KEY, d DOUBLE NULL, t TIME(6) NULL)")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO m VALUES (%s, %s, %s)",
                        [(i, i / 7, f"{i % 800}:00:00.{i:06d}") for i in range(1, 301)])
    tgt = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, {"m": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "-t", "m", config_dir=config).exit_code == 0
    monkeypatch.setattr(arrow_cols, "CHUNK", 7)
    assert verify(config, ["m"], deep=True)["m"].equal

    changed = [1, 7, 8, 14, 15, 150, 299, 300]  # in key order: chunk ends and starts; by hash: anywhere
    quote = (lambda i: str(i)) if key_type == "INT" else (lambda i: f"'{i}'")
    statements = [f"UPDATE m SET t = INTERVAL '999 hours' WHERE id = {quote(i)}" for i in changed[::2]]
    statements += [f"UPDATE m SET t = NULL WHERE id = {quote(i)}" for i in changed[1::2]]
    statements += [f"UPDATE m SET d = d + 1e-13 WHERE id = {quote(i)}" for i in (100, 200)]  # in SQL: the windows
    statements += [f"DELETE FROM m WHERE id IN ({', '.join(quote(i) for i in range(20, 40))})",  # shift the streams
                   f"INSERT INTO m VALUES ({quote(1000)}, 1, NULL), ({quote(1001)}, NULL, NULL)"]
    tamper(tgt, *statements)
    r = verify(config, ["m"], deep=True)["m"]
    assert (r.missing, r.extra, r.different) == (20, 2, len(changed) + 2), r
    want = [*changed, 100, 200] if key_type == "INT" else [str(i) for i in [*changed, 100, 200]]
    assert example_ids(r, "different") == sorted(want)[:10]
    assert any(n.endswith(": t: compared in Arrow") for n in r.notes), r.notes
