"""PostgreSQL specifics: exact types, NUL policy, ADBC staging, stale staging,
a kill inside the load transaction, views, connection settings."""

from __future__ import annotations

import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from load_kit import SETTINGS, Lake, batch, col, load
from kit.targets import pg_target

from lakeshift.config.models import SSHTunnel, TLSSettings
from lakeshift.errors import ConnectionFailed, LoadError
from lakeshift.load import open_target
from lakeshift.load.pg_base import connection_params
from lakeshift.load.postgres import PostgresLoader

UTC = timezone.utc
F32_MAX = struct.unpack("f", struct.pack("f", 3.4028234663852886e38))[0]
F32_TINY = struct.unpack("f", struct.pack("f", 1.401298464324817e-45))[0]

# Every lake type: (column, values of 4 rows, expected Python value from PostgreSQL, PostgreSQL type)
TIME = dict(lake_encoding="text")
DEC65 = dict(numeric_precision=65, numeric_scale=30, lake_encoding="text")
BIG65 = "99999999999999999999999999999999999.999999999999999999999999999999"
ROUND_TRIP = [
    (col("u64", pa.uint64()), [18446744073709551615, 0, None, 1], None, "numeric(20,0)"),
    (col("i64", pa.int64()), [-9223372036854775808, 9223372036854775807, None, 0], None, "bigint"),
    (col("i8", pa.int8()), [-128, 127, None, 0], None, "smallint"),
    (col("u8", pa.uint8()), [255, 0, None, 1], None, "smallint"),
    (col("u16", pa.uint16()), [65535, 0, None, 1], None, "integer"),
    (col("u32", pa.uint32()), [4294967295, 0, None, 1], None, "bigint"),
    (col("bits", pa.uint64(), "bit(64)", "bit"), [18446744073709551615, 0, None, 5], None, "numeric(20,0)"),
    (col("flag", pa.bool_()), [True, False, None, True], None, "boolean"),
    (col("yr", pa.int16(), "year(4)", "year"), [1901, 2155, None, 0], None, "smallint"),
    (col("d38", pa.decimal128(38, 10)),
     [Decimal("9999999999999999999999999999.9999999999"), Decimal("-9999999999999999999999999999.9999999999"),
      None, Decimal("0.0000000001")], None, "numeric(38,10)"),
    (col("d65", pa.string(), "decimal(65,30)", "decimal", **DEC65),
     [BIG65, "-" + BIG65, None, "0.000000000000000000000000000001"],
     [Decimal(BIG65), Decimal("-" + BIG65), None, Decimal("1E-30")], "numeric(65,30)"),
    (col("f32", pa.float32()), [F32_MAX, F32_TINY, None, -0.0], None, "real"),
    (col("f64", pa.float64()), [1.7976931348623157e308, 5e-324, None, -0.0], None, "double precision"),
    (col("d", pa.date32()), [date(1000, 1, 1), date(9999, 12, 31), None, date(1970, 1, 1)], None, "date"),
    (col("dt", pa.timestamp("us")),
     [datetime(1000, 1, 1, 0, 0, 0, 1), datetime(9999, 12, 31, 23, 59, 59, 999999), None,
      datetime(2026, 3, 29, 2, 30, 0, 123456)], None, "timestamp(6) without time zone"),
    (col("ts", pa.timestamp("us", tz="UTC")),
     [datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC), None,
      datetime(2026, 10, 25, 1, 30, 0, 1, tzinfo=UTC)], None, "timestamp(6) with time zone"),
    (col("tm", pa.string(), "time(6)", "time", **TIME),
     ["-838:59:59.000000", "838:59:59.999999", None, "-00:00:00.500000"],
     [-timedelta(hours=838, minutes=59, seconds=59), timedelta(hours=838, minutes=59, seconds=59, microseconds=999999),
      None, -timedelta(microseconds=500000)], "interval"),
    (col("s", pa.string(), "varchar(255)", "varchar"), ["", None, "NULL", "😀 emoji 漢字 ü"], None,
     "character varying(255)"),
    (col("c4", pa.string(), "char(4)", "char"), ["😀😀😀😀", "a", None, ""], None, "character varying(4)"),
    (col("txt", pa.string(), "mediumtext", "mediumtext"), ["x" * 70000, "'quoted' \\ back", None, "\t\n"], None,
     "text"),
    (col("e", pa.string(), "enum('small','large')", "enum", char_max_length=5), ["small", "large", None, ""], None,
     "character varying(5)"),
    (col("j", pa.string(), "json", "json"), ['{"a": [1, 2.5, "x"], "b": null}', "[]", None, '"😀 \\u0001"'],
     [{"a": [1, 2.5, "x"], "b": None}, [], None, "😀 \x01"], "jsonb"),
    (col("bin", pa.binary(), "blob", "blob"), [bytes(range(256)), b"", None, b"\x00"], None, "bytea"),
    (col("vb", pa.binary(), "varbinary(4)", "varbinary"), [b"\xff\x00\xfe\x01", b"a", None, b""], None, "bytea"),
    (col("geo", pa.binary(), "geometry", "geometry"), [bytes.fromhex("0101000000000000000000f03f000000000000f03f"),
                                                       None, None, b""], None, "bytea"),
]


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return got == want and math.copysign(1, got) == math.copysign(1, want)
    return got == want and type(got) is type(want) or (
        isinstance(got, Decimal) and isinstance(want, int) and got == want)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


def test_every_lake_type_round_trips_value_exactly(pg_schema, pg, lake):
    cols = [col("id", pa.int32())] + [c for c, *_ in ROUND_TRIP]
    data = {"id": [1, 2, 3, 4], **{c.name: v for c, v, *_ in ROUND_TRIP}}
    m, paths = batch(lake, cols, [data])
    loader = pg_target(pg_schema).open()
    try:
        assert load(loader, lake, m, paths).rows == 4
    finally:
        loader.close()
    types = dict(pg.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        f"WHERE attrelid = '\"{pg_schema}\".\"t\"'::regclass AND attnum > 0 AND NOT attisdropped").fetchall())
    got_rows = pg.execute(f'SELECT * FROM "{pg_schema}"."t" ORDER BY id').fetchall()
    for i, (column, values, expected, pg_type) in enumerate(ROUND_TRIP, start=1):
        assert types[column.name] == pg_type, column.name
        for r, value in enumerate(expected if expected is not None else values):
            got = got_rows[r][i]
            if column.name == "f32" and got is not None:  # real comes back as its shortest decimal text
                got = struct.unpack("f", struct.pack("f", got))[0]
            assert _same(got, value), (column.name, r, got, value)


@pytest.mark.parametrize(("value", "what"), [("a\x00b", "a NUL character"), ('{"k": "\\u0000"}', "\\u0000")])
def test_nul_characters_are_refused_naming_the_column(pg_schema, pg, lake, value, what):
    """PostgreSQL text/jsonb cannot store NUL; the load stops rather than alter the value."""
    kind = ("varchar(10)", "varchar") if "\x00" in value else ("json", "json")
    cols = [col("id", pa.int32()), col("payload", pa.string(), *kind)]
    m, paths = batch(lake, cols, [pa.table({"id": [1, 2], "payload": ["fine", value]})])
    loader = pg_target(pg_schema).open()
    try:
        with pytest.raises(LoadError) as err:
            load(loader, lake, m, paths)
    finally:
        loader.close()
    assert "column 'payload'" in str(err.value) and what in str(err.value) and "VARBINARY/BLOB" in str(err.value)
    assert pg.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = %s AND tablename NOT LIKE '\\_lakeshift%%'",
                      (pg_schema,)).fetchone() == (0,)


def test_an_escaped_backslash_before_u0000_is_not_a_nul(pg_schema, pg, lake):
    cols = [col("id", pa.int32()), col("j", pa.string(), "json", "json")]
    m, paths = batch(lake, cols, [pa.table({"id": [1], "j": ['["\\\\u0000"]']})])
    loader = pg_target(pg_schema).open()
    try:
        load(loader, lake, m, paths)
    finally:
        loader.close()
    assert pg.execute(f'SELECT j FROM "{pg_schema}"."t"').fetchone() == (["\\u0000"],)


def _stages(pg: psycopg.Connection, schema: str) -> list[tuple[str, str]]:
    return pg.execute("SELECT c.relname, c.relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE n.nspname = %s AND c.relname LIKE '\\_ls\\_stage\\_%%' ORDER BY 1", (schema,)).fetchall()


def test_parts_go_to_an_unlogged_staging_table_by_adbc_copy_as_they_arrive(pg_schema, pg, lake, monkeypatch):
    ingested: list[tuple[str, str]] = []
    real_connect = PostgresLoader.adbc_connect

    def spy(self: PostgresLoader) -> Any:
        conn = real_connect(self)
        real_cursor = conn.cursor

        def cursor() -> Any:
            cur = real_cursor()
            real_ingest = cur.adbc_ingest

            def adbc_ingest(table: str, data: Any, **kw: Any) -> Any:
                ingested.append((table, kw["mode"]))
                return real_ingest(table, data, **kw)

            cur.adbc_ingest = adbc_ingest
            return cur

        conn.cursor = cursor
        return conn

    monkeypatch.setattr(PostgresLoader, "adbc_connect", spy)
    cols = [col("id", pa.int64()), col("v", pa.uint64())]
    m, paths = batch(lake, cols, [{"id": [1, 2], "v": [2**64 - 1, 0]}, {"id": [3], "v": [7]}])
    loader = pg_target(pg_schema).open()
    try:
        staged = loader.begin(m, "t")
        staged.add_part(paths[0], lake.fs, "file://" + paths[0], m.files[0])
        stages = _stages(pg, pg_schema)
        assert stages == [(staged.name, "u")]  # UNLOGGED, already holding the first part
        assert pg.execute(f'SELECT id, v, "_lakeshift_ord" FROM "{pg_schema}"."{staged.name}" ORDER BY 1').fetchall() == [
            (1, Decimal(2**64 - 1), 0), (2, 0, 1)]
        staged.add_part(paths[1], lake.fs, "file://" + paths[1], m.files[1])
        assert staged.commit(m).rows == 3
    finally:
        loader.close()
    assert ingested == [(staged.name, "append"), (staged.name, "append")]
    assert _stages(pg, pg_schema) == []  # dropped with the commit


def test_staging_of_a_dead_run_is_dropped_and_a_live_one_kept(pg_schema, pg, lake):
    cols = [col("id", pa.int64())]
    m1, p1 = batch(lake, cols, [pa.table({"id": [1]})])
    m2, p2 = batch(lake, cols, [pa.table({"id": [2]})], table="u")
    dead_loader, live_loader, cleaner = pg_target(pg_schema).open(), pg_target(pg_schema).open(), pg_target(pg_schema).open()
    try:
        dead = dead_loader.begin(m1, "t")
        dead.add_part(p1[0], lake.fs, "x", m1.files[0])
        dead.staging.session().conn.close()  # the process dies: no cleanup, its session ends
        live = live_loader.begin(m2, "u")
        live.add_part(p2[0], lake.fs, "x", m2.files[0])
        assert {n for n, _ in _stages(pg, pg_schema)} == {dead.name, live.name}
        cleaner.ensure_state_tables()
        assert [n for n, _ in _stages(pg, pg_schema)] == [live.name]
        assert live.commit(m2).rows == 1
    finally:
        for ld in (dead_loader, live_loader, cleaner):
            ld.close()


KILLED_RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import pyarrow as pa
    from load_kit import Lake, batch, col, load
    from kit.targets import pg_target
    from pathlib import Path
    lake = Lake(Path({lake!r}))
    cols = [col("id", pa.int64()), col("v", pa.string())]
    m, paths = batch(lake, cols, [pa.table({{"id": [1, 2], "v": ["new", "new"]}})], bid={bid!r})
    loader = pg_target({schema!r}).open()
    load(loader, lake, m, paths)
""")


@pytest.mark.slow
def test_a_run_killed_inside_the_load_transaction_leaves_nothing_and_the_next_run_loads(pg_schema, pg, lake):
    cols = [col("id", pa.int64()), col("v", pa.string())]
    m0, p0 = batch(lake, cols, [pa.table({"id": [1], "v": ["old"]})])
    loader = pg_target(pg_schema).open()
    load(loader, lake, m0, p0)
    loader.close()
    bid = "20260101T000000999999Z-kkkkkk"
    script = KILLED_RUN.format(tests=str(Path(__file__).parent), lake=str(lake.root), bid=bid, schema=pg_schema)
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, "LAKESHIFT_FAULT": "in_load_transaction"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert pg.execute(f'SELECT id, v FROM "{pg_schema}"."t" ORDER BY id').fetchall() == [(1, "old")]
    assert len(_stages(pg, pg_schema)) == 1  # the dead run's staging
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert pg.execute(f'SELECT id, v FROM "{pg_schema}"."t" ORDER BY id').fetchall() == [(1, "new"), (2, "new")]
    loader = pg_target(pg_schema).open()
    try:
        loader.ensure_state_tables()
        assert set(loader.loaded_batches("pipe", "t")) == {m0.batch_id, bid}
    finally:
        loader.close()
    assert _stages(pg, pg_schema) == []


def test_dependent_views_survive_replace_and_merge(pg_schema, pg, lake):
    """Replace is DELETE + INSERT in one transaction (no table swap), so views,
    grants and indexes on the target stay."""
    cols = [col("id", pa.int64()), col("v", pa.string())]
    loader = pg_target(pg_schema).open()
    try:
        m1, p1 = batch(lake, cols, [pa.table({"id": [1, 2], "v": ["a", "b"]})], mode="replace")
        load(loader, lake, m1, p1)
        pg.execute(f'CREATE VIEW "{pg_schema}"."v" AS SELECT id, v FROM "{pg_schema}"."t"')
        m2, p2 = batch(lake, cols, [pa.table({"id": [3], "v": ["c"]})], mode="replace")
        load(loader, lake, m2, p2)
        m3, p3 = batch(lake, cols, [pa.table({"id": [3], "v": ["C"]})])
        load(loader, lake, m3, p3)
    finally:
        loader.close()
    assert pg.execute(f'SELECT * FROM "{pg_schema}"."v"').fetchall() == [(3, "C")]


def test_a_widening_blocked_by_a_view_says_what_to_do(pg_schema, pg, lake):
    from lakeshift.errors import SchemaChangeError

    v1 = [col("id", pa.int64()), col("n", pa.int32())]
    v2 = [col("id", pa.int64()), col("n", pa.int64())]
    loader = pg_target(pg_schema).open()
    try:
        m1, p1 = batch(lake, v1, [{"id": [1], "n": [1]}])
        load(loader, lake, m1, p1)
        pg.execute(f'CREATE VIEW "{pg_schema}".v AS SELECT n FROM "{pg_schema}".t')
        m2, p2 = batch(lake, v2, [{"id": [2], "n": [2**40]}])
        with pytest.raises(SchemaChangeError, match="could not widen a column.*used by a view.*Way out"):
            load(loader, lake, m2, p2)
        assert pg.execute(f'SELECT id, n FROM "{pg_schema}".t').fetchall() == [(1, 1)]
        pg.execute(f'DROP VIEW "{pg_schema}".v')
        load(loader, lake, m2, p2)
        assert pg.execute(f'SELECT id, n FROM "{pg_schema}".t ORDER BY id').fetchall() == [(1, 1), (2, 2**40)]
    finally:
        loader.close()


def test_merge_tables_get_a_primary_key(pg_schema, pg, lake):
    cols = [col("a", pa.int64()), col("b", pa.string()), col("x", pa.int32())]
    m, p = batch(lake, cols, [pa.table({"a": [1], "b": ["k"], "x": [0]})], key=("a", "b"))
    loader = pg_target(pg_schema).open()
    try:
        load(loader, lake, m, p)
    finally:
        loader.close()
    key = pg.execute("SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_index i JOIN pg_attribute a "
                     "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                     f"WHERE i.indrelid = '\"{pg_schema}\".\"t\"'::regclass AND i.indisprimary").fetchone()[0]
    assert key == ["a", "b"]


# ---------------------------------------------------------------- connection settings


def test_connection_params_tls_timeout_and_password():
    t = pg_target("s", password="pw-123456", connect_timeout=7,
                  ssl=TLSSettings(mode="require", ca="~/ca.pem", cert="/c.pem", key="/k.pem")).model()
    p = connection_params(t, SETTINGS)
    assert p["sslmode"] == "verify-full"  # a CA is configured: verify the server
    assert p["sslrootcert"] == os.path.expanduser("~/ca.pem") and p["sslcert"] == "/c.pem" and p["sslkey"] == "/k.pem"
    assert (p["connect_timeout"], p["password"], p["host"], p["port"]) == (7, "pw-123456", "127.0.0.1", 5432)
    assert connection_params(pg_target("s", ssl=TLSSettings(mode="verify-ca", ca="/ca")).model(), SETTINGS)["sslmode"] == "verify-ca"
    assert connection_params(pg_target("s", ssl=TLSSettings(mode="disable")).model(), SETTINGS)["sslmode"] == "disable"
    assert "sslmode" not in connection_params(pg_target("s").model(), SETTINGS)
    assert connection_params(pg_target("s").model(), SETTINGS)["connect_timeout"] == SETTINGS.default_timeout


def test_connection_params_through_a_tunnel_keep_the_real_host_for_tls():
    t = pg_target("s", host="db.internal", ssl=TLSSettings(mode="verify-full", ca="/ca")).model()
    p = connection_params(t, SETTINGS, ("127.0.0.1", 40123))
    assert (p["host"], p["hostaddr"], p["port"]) == ("db.internal", "127.0.0.1", 40123)


def test_ssh_tunnel_is_opened_when_enabled(monkeypatch, pg_schema):
    from contextlib import contextmanager

    import lakeshift.connections.ssh as ssh

    calls: list[tuple[str, int]] = []

    @contextmanager
    def fake_tunnel(cfg: SSHTunnel, host: str, port: int):
        calls.append((host, port))
        yield ("127.0.0.1", 5432)  # the "local end" is the real server here

    monkeypatch.setattr(ssh, "tunnel", fake_tunnel)
    t = pg_target(pg_schema, ssh_tunnel=SSHTunnel(enabled=True, host="bastion", username="u")).model()
    loader = open_target(t, SETTINGS)
    try:
        loader.ensure_state_tables()
        assert loader.params["hostaddr"] == "127.0.0.1"
    finally:
        loader.close()
    assert calls == [("127.0.0.1", 5432)]


def test_connection_errors_never_show_the_password(pg_schema):
    secret = "Sup3r-Secret-PW"

    def factory() -> Any:
        raise psycopg.OperationalError(f"connection to server failed: password={secret} rejected; dsn "
                                       f"postgresql://u:{secret}@db/x")

    loader = open_target(pg_target(pg_schema, password=secret).model(), SETTINGS, connection_factory=factory)
    with pytest.raises(ConnectionFailed) as err:
        loader.ensure_state_tables()
    assert secret not in str(err.value) and "***" in str(err.value)
    bad = open_target(pg_target(pg_schema, port=1, password=secret).model(), SETTINGS)
    with pytest.raises(ConnectionFailed) as err:
        bad.ensure_state_tables()
    assert secret not in str(err.value) and "cannot connect to PostgreSQL target 127.0.0.1:1/test" in str(err.value)


def test_the_loader_reconnects_after_the_server_dropped_its_session(pg_schema, pg, lake):
    """PostgreSQL restarted (here: the session is terminated) between two calls."""
    loader = pg_target(pg_schema).open()
    try:
        loader.ensure_state_tables()
        pid = loader._main().conn.info.backend_pid
        pg.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(LoadError):
            loader.loaded_batches("pipe", "t")  # the call that finds the session gone fails cleanly
        assert loader.loaded_batches("pipe", "t") == {}  # and the next one reconnects
        m, paths = batch(lake, [col("id", pa.int64())], [{"id": [1]}])
        assert load(loader, lake, m, paths).rows == 1
    finally:
        loader.close()


def test_the_server_dropping_the_session_inside_the_load_transaction(pg_schema, pg, lake, monkeypatch):
    """Like a PostgreSQL restart mid-load: no partial batch visible, the next run completes."""
    from lakeshift import faults

    cols = [col("id", pa.int64()), col("v", pa.string())]
    m1, p1 = batch(lake, cols, [{"id": [1], "v": ["old"]}])
    m2, p2 = batch(lake, cols, [{"id": [1, 2], "v": ["new", "new"]}])
    loader = pg_target(pg_schema).open()
    try:
        load(loader, lake, m1, p1)
        staged = loader.begin(m2, "t")
        for p, f in zip(p2, m2.files):
            staged.add_part(p, lake.fs, "x", f)

        def drop_session(point: str) -> None:
            if point == "in_load_transaction":
                pg.execute("SELECT pg_terminate_backend(%s)", (staged.staging.session().conn.info.backend_pid,))

        monkeypatch.setattr(faults, "checkpoint", drop_session)
        with pytest.raises(LoadError):
            staged.commit(m2)
        monkeypatch.undo()
        assert pg.execute(f'SELECT id, v FROM "{pg_schema}".t').fetchall() == [(1, "old")]
        assert set(loader.loaded_batches("pipe", "t")) == {m1.batch_id}
        loader.ensure_state_tables()  # the next run: the dead session's staging goes
        assert _stages(pg, pg_schema) == []
        assert load(loader, lake, m2, p2).rows == 2
        assert pg.execute(f'SELECT id, v FROM "{pg_schema}".t ORDER BY id').fetchall() == [(1, "new"), (2, "new")]
    finally:
        loader.close()


# ---------------------------------------------------------------- merge as INSERT ... ON CONFLICT


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the loaders' psycopg sessions send."""
    from lakeshift.load.session import Session

    seen: list[str] = []
    for name in ("execute", "query"):
        real = getattr(Session, name)

        def spy(self: Any, statement: str, *args: Any, _real: Any = real) -> Any:
            seen.append(statement)
            return _real(self, statement, *args)

        monkeypatch.setattr(Session, name, spy)
    return seen


def _merge_twice(pg_schema: str, lake: Lake, second: dict[str, list[Any]], prepare: Any = None,
                 ts: str | None = None) -> Any:
    """Load {1: a, 2: b}, let `prepare` change the target, merge `second` into it."""
    cols = [col("id", pa.int64()), col("v", pa.string()), col("seq", pa.int64())]
    loader = pg_target(pg_schema).open()
    try:
        m1, p1 = batch(lake, cols, [{"id": [1, 2], "v": ["a", "b"], "seq": [1, 2]}], ts=ts)
        load(loader, lake, m1, p1)
        if prepare:
            prepare()
        m2, p2 = batch(lake, cols, [second], ts=ts)
        return load(loader, lake, m2, p2)
    finally:
        loader.close()


def test_a_merge_upserts_and_a_column_only_in_the_target_gets_its_default(pg_schema, pg, lake, sent):
    """INSERT ... ON CONFLICT must leave the target exactly as DELETE + INSERT
    would: a replaced row gets the DEFAULT of a column the batch does not have."""
    t = f'"{pg_schema}"."t"'

    def prepare() -> None:
        pg.execute(f"ALTER TABLE {t} ADD COLUMN extra text DEFAULT 'fresh', ADD COLUMN plain int")
        pg.execute(f"UPDATE {t} SET extra = 'old', plain = 7")

    res = _merge_twice(pg_schema, lake, {"id": [2, 3], "v": ["B", "c"], "seq": [3, 4]}, prepare)
    assert (res.rows, res.rows_deleted) == (2, 1)
    assert any("ON CONFLICT" in q for q in sent) and not any(q.startswith("DELETE") for q in sent)
    assert pg.execute(f"SELECT id, v, extra, plain FROM {t} ORDER BY id").fetchall() == [
        (1, "a", "old", 7), (2, "B", "fresh", None), (3, "c", "fresh", None)]


def test_a_merge_with_repeated_keys_into_an_existing_table_keeps_the_newest(pg_schema, pg, lake):
    res = _merge_twice(pg_schema, lake, {"id": [2, 2, 3, 2], "v": ["x", "newest", "c", "older"],
                                         "seq": [5, 9, 6, 7]}, ts="seq")
    assert res.rows == 2
    assert pg.execute(f'SELECT id, v FROM "{pg_schema}"."t" ORDER BY id').fetchall() == [
        (1, "a"), (2, "newest"), (3, "c")]


def test_a_target_with_triggers_is_merged_by_delete_and_insert(pg_schema, pg, lake, sent):
    """A trigger (an audit log here; foreign keys are triggers too) would see an
    UPDATE instead of DELETE + INSERT: such a target keeps the old way."""
    t = f'"{pg_schema}"."t"'

    def prepare() -> None:
        pg.execute(f'CREATE TABLE "{pg_schema}".audit (op text, id bigint)')
        pg.execute(f'CREATE FUNCTION "{pg_schema}".log_op() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
                   f'INSERT INTO "{pg_schema}".audit VALUES (TG_OP, COALESCE(NEW.id, OLD.id)); RETURN NULL; END $$')
        pg.execute(f'CREATE TRIGGER log AFTER INSERT OR UPDATE OR DELETE ON {t} '
                   f'FOR EACH ROW EXECUTE FUNCTION "{pg_schema}".log_op()')

    res = _merge_twice(pg_schema, lake, {"id": [2, 3], "v": ["B", "c"], "seq": [3, 4]}, prepare)
    assert (res.rows, res.rows_deleted) == (2, 1)
    assert sorted(pg.execute(f'SELECT op, id FROM "{pg_schema}".audit').fetchall()) == [
        ("DELETE", 2), ("INSERT", 2), ("INSERT", 3)]
    assert not any("ON CONFLICT" in q for q in sent)
    assert pg.execute(f"SELECT id, v FROM {t} ORDER BY id").fetchall() == [(1, "a"), (2, "B"), (3, "c")]


def test_a_target_without_a_unique_key_is_merged_by_delete_and_insert(pg_schema, pg, lake, sent):
    t = f'"{pg_schema}"."t"'

    def prepare() -> None:
        pg.execute(f"ALTER TABLE {t} DROP CONSTRAINT t_pkey")
        pg.execute(f"CREATE INDEX t_id ON {t} (id)")  # not unique: no arbiter for ON CONFLICT

    res = _merge_twice(pg_schema, lake, {"id": [2, 3], "v": ["B", "c"], "seq": [3, 4]}, prepare)
    assert (res.rows, res.rows_deleted) == (2, 1)
    assert not any("ON CONFLICT" in q for q in sent) and any(q.startswith("DELETE") for q in sent)
    assert pg.execute(f"SELECT id, v FROM {t} ORDER BY id").fetchall() == [(1, "a"), (2, "B"), (3, "c")]
