#!/usr/bin/env bash
# The whole test suite against the real services (MariaDB, PostgreSQL, a moto
# S3 server the tests start, DuckDB files); it includes the benchmark's smoke run
# (tests/test_bench_smoke.py: bench/run.py --smoke, tiny data, no peers).
# Then, with no arguments, the Dagster and Airflow suites in their own venv
# (lakeshift[test-orchestrators]); LAKESHIFT_SKIP_EXTRAS=1 leaves them out.
source "$(dirname "$0")/lib.sh"
ensure_mysql
ensure_postgres
ensure_venv test
cd "$ROOT"
export AWS_EC2_METADATA_DISABLED=true
status=0
"$VENV/bin/python" -m pytest -q "$@" || status=$?
if [ $# -eq 0 ] && [ -z "${LAKESHIFT_SKIP_EXTRAS:-}" ]; then
  ensure_venv test-orchestrators "$EXTRAS_VENV"
  LAKESHIFT_TEST_EXTRAS=1 "$EXTRAS_VENV/bin/python" -m pytest -q tests/test_dagster_assets.py tests/test_airflow_dag.py \
    || status=$?
fi
exit $status
