"""The MySQL side of end-to-end tests: a deterministic `items` table that
changes round by round, and the source rows every comparison starts from."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from conftest import mysql_connect

ITEMS = ["id", "name", "amount", "updated_at"]
T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 123456)
HYBRID: dict[str, Any] = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
FULL_SYNC: dict[str, Any] = {"cdc_strategy": "full_sync"}


def create_items(mysql: Any, n: int, table: str = "items", name: str = "item") -> None:
    """`n` rows, three per timestamp (ties), every tenth amount NULL."""
    with mysql.cursor() as cur:
        cur.execute(f"""CREATE TABLE `{table}` (
            id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(60) NOT NULL,
            amount DECIMAL(12,2) NULL,
            updated_at DATETIME(6) NOT NULL,
            KEY ix_cursor (updated_at, id))""")
        insert_items(mysql, n, table, name)


def insert_items(mysql: Any, n: int, table: str = "items", name: str = "item",
                 at: dt.datetime | None = None) -> None:
    with mysql.cursor() as cur:
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{table}`")
        start = int(cur.fetchone()[0]) + 1
        rows = [(f"{name} {i} ✓", None if i % 10 == 0 else f"{i}.{i % 100:02d}",
                 at or T0 + dt.timedelta(seconds=i // 3)) for i in range(start, start + n)]
        for k in range(0, len(rows), 5000):
            cur.executemany(f"INSERT INTO `{table}` (name, amount, updated_at) VALUES (%s, %s, %s)", rows[k:k + 5000])


def change_items(mysql: Any, round_: int, table: str = "items", inserts: int = 50,
                 updates: tuple[int, ...] = (3, 4, 5, 100)) -> None:
    """New rows and updated rows, all on one (new) timestamp per round; the
    updated rows change again in every round, so batches applied out of
    order would leave a stale value behind."""
    later = T0 + dt.timedelta(days=round_)
    insert_items(mysql, inserts, table, f"round {round_}", at=later)
    with mysql.cursor() as cur:
        cur.execute(f"UPDATE `{table}` SET name = %s, amount = %s, updated_at = %s WHERE id IN "
                    f"({', '.join(str(i) for i in updates)})", (f"updated in round {round_}", f"{round_}.25", later))


def mysql_count(mysql_db: str, table: str = "items") -> int:
    with mysql_connect(mysql_db) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{table}`")
        return int(cur.fetchone()[0])


def norm(value: Any) -> Any:
    """Compare values across drivers: datetimes to naive UTC, decimals exact."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, decimal.Decimal):
        # int(), not normalize(): normalize() rounds to the context's 28 digits, so two different
        # DECIMAL(65,0) values would compare equal (and 10**65-1 would read as 1E+65)
        return int(value) if value == value.to_integral_value() else value
    return value


def source_rows(mysql_db: str, table: str, columns: list[str], order_by: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(f"`{c}`" for c in columns)
    with mysql_connect(mysql_db, init_command="SET time_zone = '+00:00'") as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {cols} FROM `{table}` ORDER BY {order_by}")
        return [tuple(norm(v) for v in row) for row in cur.fetchall()]
