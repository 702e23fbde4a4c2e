#!/usr/bin/env bash
# `npm run pack [-- --platforms linux-x64-gnu,linux-arm64-gnu | --host] [OUT_DIR]` (default `pack/`): the npm
# tarballs of @quantbot/lake and of one binary package per platform (scripts/platforms.mjs), ready for
# `npm publish` (platform packages first). Every binary is a release build cross-compiled by cargo-zigbuild with
# Zig from PyPI (installed into .tools/zig on first use): Linux for glibc 2.17 and for musl, x64 and arm64, and
# macOS x64 and arm64. Windows is built only by the release workflow. scripts/pack.mjs does the work.
set -euo pipefail
cd "$(dirname "$0")/.."

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

echo "==> TypeScript (dist/)" >&2
npx tsc -p tsconfig.build.json
node scripts/pack.mjs "$@"
