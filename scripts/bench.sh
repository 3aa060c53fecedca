#!/usr/bin/env bash
# The benchmark: lakeshift against the raw limit (connectorx -> Parquet, ADBC
# COPY) and against Sling and dlt, on data it generates in the local MariaDB.
#   bash scripts/bench.sh                       # 2,000,000 rows, 3 runs each, peers included
#   bash scripts/bench.sh --rows 10000000 --repeat 1 --skip-peers
#   bash scripts/bench.sh --smoke               # tiny, one run, no peers (what the test suite runs)
#   bash scripts/bench.sh --only full_pg,raw --profile
# The peers (and py-spy) go into bench/.venv-peers, never into the project's
# environment. The report is written to bench/results/<date>-<size>.md.
source "$(dirname "$0")/lib.sh"
ensure_mysql
ensure_postgres
ensure_venv test
cd "$ROOT"
exec "$VENV/bin/python" bench/run.py "$@"
