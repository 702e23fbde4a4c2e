#!/usr/bin/env bash
# The whole test suite. `npm test` (the README's command) and `.ci/run` both run exactly this script.
# Order: cheap static checks first, then the debug addon, Rust tests, TypeScript checks, and finally
# vitest against a throwaway ClickHouse and a throwaway S3 server (moto) that this script starts and always stops.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
mkdir -p .test-output

step "cargo fmt --check"
cargo fmt --all -- --check

step "napi build (debug addon, regenerates index.js / index.d.ts)"
npx napi build --platform --esm --no-const-enum

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "tsc --noEmit"
npx tsc --noEmit

step "eslint"
npx eslint .

step "actionlint (the release workflow, which runs on GitHub's runners, not here)"
bash scripts/lint-workflows.sh

step "compile TypeScript (dist/, used by the CLI tests)"
npx tsc -p tsconfig.build.json

step "npm tarballs: release addons for linux-x64-gnu and linux-arm64-gnu (glibc 2.17), used by the install tests"
# The other platforms (musl, macOS) cost minutes each: `npm run pack` and the release workflow build them.
rm -rf .test-output/pack
npm run pack -- --platforms linux-x64-gnu,linux-arm64-gnu .test-output/pack
export QUANTBOT_REQUIRE_PACK=1 QUANTBOT_PACK_DIR="$PWD/.test-output/pack"

step "arm64 Node under qemu-user (the linux-arm64-gnu install test)"
arm64_env=$(bash scripts/arm64-node.sh)
eval "$arm64_env"
export QUANTBOT_REQUIRE_ARM64=1

step "ClickHouse (throwaway server on loopback)"
server_env=$(bash scripts/clickhouse-server.sh start)
eval "$server_env"
trap 'bash scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_DIR"' EXIT

step "S3 API server (moto, throwaway, on loopback)"
s3_env=$(bash scripts/s3-server.sh start)
eval "$s3_env"
export QUANTBOT_REQUIRE_S3=1
trap 'bash scripts/s3-server.sh stop "$S3_TEST_DIR"; bash scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_DIR"' EXIT

step "cargo test"
cargo test --workspace

step "vitest"
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json=.test-output/vitest.json
vitest_status=$?
set -e
node scripts/vitest-summary.mjs .test-output/vitest.json
[ "$vitest_status" = 0 ] || exit "$vitest_status"

step "demo (npm run demo: its own server, the CLI end to end, verify)"
DEMO_DIR="$PWD/.test-output/demo" bash scripts/demo.sh

step "summary"
echo "cargo tests, clippy, fmt, tsc, eslint and the demo passed"
node scripts/vitest-summary.mjs .test-output/vitest.json
