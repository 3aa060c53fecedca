"""dlt peer: `sql_table` with the connectorx backend (its fastest here, measured
against pyarrow and the csv loader format) -> PostgreSQL, write_disposition
replace. Runs in the bench's own virtual environment (bench/.venv-peers).

    python bench/peers/dlt_full.py --mysql mysql://root@127.0.0.1:3306/db --table orders \
        --pg postgresql://postgres:unused@127.0.0.1:5432/test --dataset bench_dlt --workdir DIR"""

from __future__ import annotations

import argparse
import json
import os


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mysql", required=True, help="mysql://user@host:port/db (connectorx URL)")
    ap.add_argument("--table", required=True)
    ap.add_argument("--pg", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--backend", default="connectorx")
    ap.add_argument("--chunk-size", type=int, default=100_000)
    args = ap.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    from dlt.sources.sql_database import sql_table

    sqla = args.mysql.replace("mysql://", "mysql+pymysql://", 1)
    kwargs = {"conn": args.mysql} if args.backend == "connectorx" else None
    resource = sql_table(credentials=sqla, table=args.table, backend=args.backend, chunk_size=args.chunk_size,
                         backend_kwargs=kwargs)
    pipeline = dlt.pipeline(pipeline_name=args.dataset, destination=dlt.destinations.postgres(args.pg),
                            dataset_name=args.dataset, pipelines_dir=os.path.join(args.workdir, "pipelines"))
    info = pipeline.run(resource, write_disposition="replace")
    info.raise_on_failed_jobs()
    rows = pipeline.last_trace.last_normalize_info.row_counts.get(args.table)
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
