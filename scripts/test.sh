#!/usr/bin/env bash
# The whole test suite against the real services (MariaDB, PostgreSQL, a moto
# S3 server the tests start, DuckDB files); it includes the benchmark's smoke run
# (tests/test_bench_smoke.py: bench/run.py --smoke, tiny data, no peers).
source "$(dirname "$0")/lib.sh"
ensure_mysql
ensure_postgres
ensure_venv test
cd "$ROOT"
export AWS_EC2_METADATA_DISABLED=true
"$VENV/bin/python" -m pytest -q "$@"
