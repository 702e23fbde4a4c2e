#!/usr/bin/env bash
# `npm run pack [-- OUT_DIR]` (default `pack/`): the npm tarballs of @quantbot/lake and its linux-x64-gnu binary
# package, ready for `npm publish` (platform package first). The binary is a release build for glibc 2.17 made
# with cargo-zigbuild and Zig from PyPI (installed into .tools/zig on first use), so it loads on any x86_64 Linux
# with glibc >= 2.17; the main package lists the platform package as an optional dependency of the same version.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mkdir -p "${1:-pack}" && cd "${1:-pack}" && pwd)"

# Pinned: the versions this script was checked with.
ZIGLANG=0.17.1
CARGO_ZIGBUILD=0.24.1
if ! .tools/zig/bin/cargo-zigbuild --version 2>/dev/null | grep -q "$CARGO_ZIGBUILD" \
   || ! .tools/zig/bin/python -c "import ziglang" 2>/dev/null; then
  echo "==> installing ziglang $ZIGLANG and cargo-zigbuild $CARGO_ZIGBUILD into .tools/zig" >&2
  python3 -m venv .tools/zig
  .tools/zig/bin/pip install --quiet --disable-pip-version-check "ziglang==$ZIGLANG" "cargo-zigbuild==$CARGO_ZIGBUILD"
fi
# cargo-zigbuild finds Zig through the venv's python (`python -m ziglang`).
export PATH="$PWD/.tools/zig/bin:$PATH"

echo "==> release addon for x86_64-unknown-linux-gnu, glibc 2.17" >&2
cargo zigbuild --release --locked -p quantbot-lake --target x86_64-unknown-linux-gnu.2.17
echo "==> TypeScript (dist/)" >&2
npx tsc -p tsconfig.build.json
echo "==> tarballs into $out" >&2
node scripts/pack.mjs target/x86_64-unknown-linux-gnu/release/libquantbot_lake.so "$out"
