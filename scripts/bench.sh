#!/usr/bin/env bash
# `npm run bench [-- --rows N] [--pin | --no-pin] [--scale | --freshness | --refresh | --object-store [--link-mbps 20]]`: release build, a throwaway ClickHouse with
# max_memory_usage 1 GiB per query and query logging on (the server's cost per query is read from
# system.query_log), then bench/bench.mjs, which rewrites its sections of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
npx napi build --platform --release --esm --no-const-enum
cargo build --release -p lake-core --example writer_bench
eval "$(CLICKHOUSE_MAX_MEMORY_USAGE=1073741824 CLICKHOUSE_LOG_QUERIES=1 bash scripts/clickhouse-server.sh start)"
trap 'bash scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_DIR"' EXIT
node bench/bench.mjs "$@"
