"""The raw load limit: the Parquet file from raw_extract.py bulk-loaded into a
new PostgreSQL table by ADBC `adbc_ingest` (binary COPY), streamed a record
batch at a time. No primary key, no staging, no types fixed: just the floor.

    python bench/raw_load.py --parquet x.parquet --dsn postgresql://postgres@127.0.0.1:5432/test --schema s --table t"""

from __future__ import annotations

import argparse
import json

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parquet", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--batch-size", type=int, default=65536)
    args = ap.parse_args()
    pf = pq.ParquetFile(args.parquet)
    reader = pa.RecordBatchReader.from_batches(pf.schema_arrow, pf.iter_batches(batch_size=args.batch_size))
    with adbc.connect(args.dsn) as conn:
        cur = conn.cursor()
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{args.schema}"')
        cur.execute(f'DROP TABLE IF EXISTS "{args.schema}"."{args.table}"')
        rows = cur.adbc_ingest(args.table, reader, mode="create", db_schema_name=args.schema)
        conn.commit()
        cur.close()
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
