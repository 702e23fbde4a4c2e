#!/usr/bin/env bash
# `npm run demo`: build, start a throwaway ClickHouse, load a small realistic candle set (300 tokens, 3 days of
# 1m candles with gaps and late listings), export the windows of 500 alerts with the CLI, show the lake, verify
# it, and stop the server. Output stays in ./demo-output (or $DEMO_DIR) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${DEMO_DIR:-$PWD/demo-output}
rm -rf "$out" && mkdir -p "$out"
say() { printf '\n== %s\n' "$*"; }

say "building the addon (${DEMO_PROFILE:-debug}) and the TypeScript CLI"
if [ "${DEMO_PROFILE:-debug}" = release ]; then npx napi build --platform --release --esm --no-const-enum; else npx napi build --platform --esm --no-const-enum; fi
npx tsc -p tsconfig.build.json

say "starting a throwaway ClickHouse"
eval "$(bash scripts/clickhouse-server.sh start)"
trap 'bash scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_DIR"' EXIT
q() { curl -fsS "$CLICKHOUSE_URL/" --data-binary "$1"; }

say "loading 300 tokens x 3 days of 1m candles"
q "CREATE DATABASE quantbot"
q "CREATE TABLE quantbot.ohlcv_candles (token_address String, chain String, timestamp DateTime, interval_seconds UInt32,
   open Float64, high Float64, low Float64, close Float64, volume Float64, ingested_at DateTime)
   ENGINE = ReplacingMergeTree(ingested_at) ORDER BY (token_address, chain, timestamp, interval_seconds)"
# Token k: a base58 address from a hash; listed (k*13 % 1440) minutes after the start; every fourth token misses
# about 5% of its minutes;
# price a slow wave plus noise around a per-token base.
q "CREATE TABLE quantbot.tokens ENGINE = Memory AS SELECT number AS k, arrayStringConcat(arrayMap(i ->
   substring('123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz', (cityHash64(number, i) % 58) + 1, 1), range(44))) AS mint
   FROM system.numbers LIMIT 300"
q "INSERT INTO quantbot.ohlcv_candles SELECT t.mint, 'solana', toDateTime(1735689600 + m * 60), 60,
   p, p * (1 + (h % 97) / 5000), p * (1 - (h % 89) / 5000), p * (1 + ((h % 101) - 50) / 10000), (h % 100000) / 10, toDateTime(1735689600)
   FROM (SELECT intDiv(number, 4320) AS k, number % 4320 AS m, cityHash64(number) AS h,
     (1 + k % 17) * (1 + 0.05 * sin(m / 97 + k)) * (1 + ((cityHash64(number, 1) % 1000) / 1000 - 0.5) / 50) AS p
     FROM system.numbers LIMIT 1296000) AS c ANY INNER JOIN quantbot.tokens AS t USING k
   WHERE m >= (k * 13) % 1440 AND NOT (k % 4 = 0 AND h % 20 = 0)"
echo "candles: $(q 'SELECT count() FROM quantbot.ohlcv_candles'), tokens: $(q 'SELECT uniqExact(token_address) FROM quantbot.ohlcv_candles')"

say "writing 503 alerts (CSV: alert_id, mint, ts as ISO-8601)"
q "SELECT concat('alert-', toString(number)) AS alert_id, mint,
   formatDateTime(toDateTime(1735689600 + 86400 + (cityHash64(number) % 86400)), '%Y-%m-%dT%H:%M:%SZ') AS ts
   FROM (SELECT number, toUInt64(number % 300) AS k FROM system.numbers LIMIT 500) AS a ANY INNER JOIN quantbot.tokens AS t USING k
   ORDER BY number FORMAT CSVWithNames" > "$out/alerts.csv"
# A few alerts on a token the table has never seen: their coverage is `insufficient`.
for i in 1 2 3; do echo "\"unseen-$i\",\"UnseenToken11111111111111111111111111111111\",\"2025-01-02T0$i:00:00Z\"" >> "$out/alerts.csv"; done
head -n 4 "$out/alerts.csv"

say "quantbot lake export-run-slices"
node dist/lib/cli/bin.js lake export-run-slices --run-id demo --interval 1m --window pre52_post948 \
  --alerts "$out/alerts.csv" --data-root "$out" --clickhouse-url "$CLICKHOUSE_URL/quantbot"

run="$out/lake/runs/run_id=demo"
say "the lake ($(find "$run" -type f | wc -l) files)"
(cd "$out" && find lake -maxdepth 6 | sort | head -n 14 && echo "  ...")

say "coverage by status"
node -e '
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const db = await (await DuckDBInstance.create(":memory:")).connect();
  const r = await db.runAndReadAll(`SELECT status, count(*) AS alerts FROM read_parquet(${JSON.stringify(process.argv[1] + "/outputs/coverage.parquet").replace(/"/g, "'"'"'")}) GROUP BY status ORDER BY status`);
  for (const row of r.getRowObjectsJS()) console.log(`  ${row.status.padEnd(12)} ${row.alerts}`);
' --input-type=module "$run"

say "quantbot lake verify"
node dist/lib/cli/bin.js lake verify "$run"
say "done: the run is in $run"
