"""The raw extract limit: the plainest fast read of the table into Arrow
(connectorx `arrow_stream` of SELECT *), written to one Parquet file with
pyarrow (snappy). No types fixed, no paging, no manifest: just the floor.

    python bench/raw_extract.py --url mysql://root@127.0.0.1:3306/db --table orders --out x.parquet
    [--where "updated_at >= '...'"]   (the incremental floor: only the changed rows)"""

from __future__ import annotations

import argparse
import json

import connectorx as cx
import pyarrow.parquet as pq


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch-size", type=int, default=65536)
    ap.add_argument("--where", default=None)
    args = ap.parse_args()
    sql = f"SELECT * FROM `{args.table}`" + (f" WHERE {args.where}" if args.where else "")
    reader = cx.read_sql(args.url, sql, return_type="arrow_stream",
                         batch_size=args.batch_size)
    writer = pq.ParquetWriter(args.out, reader.schema, compression="snappy")
    rows = 0
    for batch in reader:
        writer.write_batch(batch)
        rows += batch.num_rows
    writer.close()
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
