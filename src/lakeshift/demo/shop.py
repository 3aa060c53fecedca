"""Create the sample shop database, write its config folder, and show a full
then an incremental sync into DuckDB."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lakeshift.errors import ConnectionFailed
from lakeshift.identifiers import check_identifier

NAMES = ["Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia",
         "Zoë", "Jürgen", "Søren", "Ærin", "Łukasz", "美咲", "Андрей", "Nnamdi", "Priya", "José 🚀"]
COUNTRIES = ["DE", "FR", "US", "JP", "BR", "IN", "NG", "PL", "DK", "CA"]
STATUSES = ["new", "paid", "shipped", "delivered", "cancelled"]


@dataclass
class DemoSettings:
    workdir: Path
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    database: str = "lakeshift_demo"
    customers: int = 500
    orders: int = 3000


def _connect(s: DemoSettings, database: str | None = None) -> Any:
    import pymysql

    try:
        return pymysql.connect(host=s.host, port=s.port, user=s.user, password=s.password, database=database,
                               charset="utf8mb4", autocommit=True, init_command="SET time_zone = '+00:00'")
    except pymysql.err.OperationalError as exc:
        raise ConnectionFailed(
            f"cannot connect to the demo MySQL at {s.host}:{s.port} as {s.user}: {exc.args[-1]}; "
            "start MariaDB/MySQL or pass --mysql-host/--mysql-port/--mysql-user"
        ) from None


def create_database(s: DemoSettings, seed: int = 7) -> dict[str, int]:
    """(Re)create the sample database with deterministic data."""
    check_identifier(s.database, "demo database")
    rng = random.Random(seed)
    with _connect(s) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{s.database}`")
        cur.execute(f"CREATE DATABASE `{s.database}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{s.database}`")
        for stmt in resources.files("lakeshift.demo").joinpath("shop.sql").read_text().split(";"):
            if stmt.strip():
                cur.execute(stmt)
        base = datetime(2026, 1, 1)
        customers = []
        for i in range(1, s.customers + 1):
            created = base + timedelta(minutes=rng.randrange(0, 400_000), microseconds=rng.randrange(10**6))
            name = f"{rng.choice(NAMES)} {i}"
            customers.append((name, f"user{i}@example.com" if i % 7 else None, rng.choice(COUNTRIES),
                              rng.choice(["bronze", "silver", "gold"]), int(i % 11 != 0), created, created))
        cur.executemany("INSERT INTO customers (customer_name, email, country, tier, is_active, created_at, updated_at)"
                        " VALUES (%s,%s,%s,%s,%s,%s,%s)", customers)
        orders, items = [], []
        for o in range(1, s.orders + 1):
            created = base + timedelta(minutes=rng.randrange(0, 450_000), microseconds=rng.randrange(10**6))
            lines = [(f"SKU-{rng.randrange(1, 400):04d}", rng.randrange(1, 6),
                      Decimal(rng.randrange(199, 99_999)) / 100) for _ in range(rng.randrange(1, 5))]
            total = sum(q * p for _, q, p in lines)
            orders.append((rng.randrange(1, s.customers + 1), created.date(), rng.choice(STATUSES), total,
                           "gift ✨" if o % 13 == 0 else None, created, created))
            items.extend((o, sku, q, p, created) for sku, q, p in lines)
        cur.executemany("INSERT INTO orders (customer_id, order_date, status, total, note, created_at, updated_at)"
                        " VALUES (%s,%s,%s,%s,%s,%s,%s)", orders)
        cur.executemany("INSERT INTO order_items (order_id, sku, quantity, unit_price, created_at)"
                        " VALUES (%s,%s,%s,%s,%s)", items)
    return {"customers": len(customers), "orders": len(orders), "order_items": len(items)}


def change_some_rows(s: DemoSettings) -> str:
    """A day of business: updates, new orders with items, a new customer."""
    now = datetime(2026, 11, 26, 12, 0, 0)
    with _connect(s, s.database) as conn, conn.cursor() as cur:
        cur.execute("UPDATE orders SET status = 'delivered', updated_at = %s WHERE order_id IN (1, 2, 3, 4, 5)", (now,))
        cur.execute("UPDATE customers SET tier = 'gold', updated_at = %s WHERE customer_id IN (10, 20)", (now,))
        cur.execute("INSERT INTO customers (customer_name, email, country, tier, is_active, created_at, updated_at)"
                    " VALUES ('New Customer', 'new@example.com', 'DE', 'silver', 1, %s, %s)", (now, now))
        for _ in range(3):
            cur.execute("INSERT INTO orders (customer_id, order_date, status, total, created_at, updated_at)"
                        " VALUES (1, %s, 'new', 42.00, %s, %s)", (now.date(), now, now))
            cur.execute("INSERT INTO order_items (order_id, sku, quantity, unit_price, created_at)"
                        " VALUES (LAST_INSERT_ID(), 'SKU-0001', 2, 21.00, %s)", (now,))
    return "updated 5 orders and 2 customers, added 1 customer and 3 orders with 3 items"


def write_config(s: DemoSettings) -> Path:
    root = s.workdir / "config"
    files: dict[str, Any] = {
        "connections.yml": {
            "connections": {
                "sources": {"shop_mysql": {
                    "type": "mysql", "host": "${LAKESHIFT_DEMO_MYSQL_HOST:-%s}" % s.host,
                    "port": "${LAKESHIFT_DEMO_MYSQL_PORT:-%d}" % s.port, "database": s.database,
                    "username": "${LAKESHIFT_DEMO_MYSQL_USER:-%s}" % s.user,
                    "password": "${LAKESHIFT_DEMO_MYSQL_PASSWORD:-}",
                    "description": "the sample shop database"}},
                "targets": {"shop_duckdb": {"type": "duckdb", "path": str(s.workdir / "shop.duckdb"),
                                            "schema": "warehouse", "description": "local DuckDB warehouse"}},
                "storage": {"default": {"type": "local", "path": str(s.workdir / "lake")}},
            }
        },
        "pipelines/shop.yml": {
            "pipeline": {"name": "shop", "description": "sample shop -> DuckDB", "source": "shop_mysql",
                         "target": "shop_duckdb", "processing": {"strategy": "parallel", "batch_size": 5000,
                                                                  "max_parallel_tables": 2},
                         "s3": {"isolation_prefix": "shop", "partition_strategy": "hybrid", "compression": "zstd"}},
            "tables": {
                "customers": {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at",
                              "cdc_id_column": "customer_id", "table_type": "dimension", "target_name": "dim_customers",
                              "validation": {"required_columns": ["customer_id", "customer_name"],
                                             "max_null_percentage": 5.0}},
                "orders": {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "order_id",
                           "lookback": "10m", "depends_on": ["customers"]},
                "order_items": {"cdc_strategy": "id_only", "cdc_id_column": "item_id", "depends_on": ["orders"]},
            },
        },
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


def compare_counts(s: DemoSettings) -> list[tuple[str, int, int]]:
    """(table, rows in MySQL, rows in DuckDB)."""
    import duckdb

    pairs = [("customers", "dim_customers"), ("orders", "orders"), ("order_items", "order_items")]
    with _connect(s, s.database) as conn, conn.cursor() as cur:
        source = {}
        for table, _ in pairs:
            cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            source[table] = cur.fetchone()[0]
    con = duckdb.connect(str(s.workdir / "shop.duckdb"), read_only=True)
    try:
        return [(t, source[t], con.execute(f'SELECT COUNT(*) FROM warehouse."{target}"').fetchone()[0]) for t, target in pairs]
    finally:
        con.close()
