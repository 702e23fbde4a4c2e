#!/usr/bin/env bash
# `npm run bench [-- --rows N]`: release build, a throwaway ClickHouse, then bench/bench.mjs (writes BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
npx napi build --platform --release --esm --no-const-enum
cargo build --release -p lake-core --example writer_bench
eval "$(bash scripts/clickhouse-server.sh start)"
trap 'bash scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_DIR"' EXIT
node bench/bench.mjs "$@"
