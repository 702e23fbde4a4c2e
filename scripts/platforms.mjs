// The platforms @quantbot/lake ships a binary for: one npm package each under npm/<platform>/, in the order of
// package.json's napi.targets, with how each is built here (cargo-zigbuild) or why only the release workflow
// (.github/workflows/release.yml) builds it. scripts/pack.mjs, scripts/binary-check.mjs and the package test
// read this one list.
import { parseTriple } from '@napi-rs/cli';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** How a target is built, by Rust target triple: with cargo-zigbuild on a Linux x86_64 machine (`zigTarget`), or
 * with plain cargo on a machine of its own OS (the release workflow's macOS and Windows runners). */
const BUILDS = {
  // glibc 2.17: loads on every Linux that Node 20 runs on (RHEL/CentOS 7 userlands and newer).
  'x86_64-unknown-linux-gnu': { zigTarget: 'x86_64-unknown-linux-gnu.2.17', glibc: [2, 17] },
  'aarch64-unknown-linux-gnu': { zigTarget: 'aarch64-unknown-linux-gnu.2.17', glibc: [2, 17] },
  // A Node addon is a shared library loaded into a dynamically linked node: link musl dynamically.
  'x86_64-unknown-linux-musl': { zigTarget: 'x86_64-unknown-linux-musl', rustflags: '-C target-feature=-crt-static' },
  'aarch64-unknown-linux-musl': { zigTarget: 'aarch64-unknown-linux-musl', rustflags: '-C target-feature=-crt-static' },
  // The oldest macOS each architecture's Node 20 runs on, or older. `frameworks`: the Apple frameworks the addon
  // links (Security: rustls-platform-verifier, under reqwest under object_store; CoreFoundation: that and
  // chrono's clock). Zig ships macOS's libSystem but no frameworks, so pack.mjs gives the linker stubs that only
  // name them (README, "Install").
  'x86_64-apple-darwin': { zigTarget: 'x86_64-apple-darwin', macos: '10.13', frameworks: ['Security', 'CoreFoundation'] },
  'aarch64-apple-darwin': { zigTarget: 'aarch64-apple-darwin', macos: '11.0', frameworks: ['Security', 'CoreFoundation'] },
  'x86_64-pc-windows-msvc': {},
};

/** Why a target without a `zigTarget` is not built on Linux. */
const ELSEWHERE = {
  'x86_64-pc-windows-msvc':
    "MSVC's linker and the Windows SDK libraries (msvcrt, ucrt, node.lib) cannot be installed on these machines; " +
    'the release workflow builds it on a Windows runner',
};

/**
 * @typedef {{ platform: string, triple: string, name: string, main: string, os: string[], cpu: string[],
 *   libc?: string[], build: { zigTarget?: string, rustflags?: string, macos?: string, frameworks?: string[], glibc?: number[] },
 *   elsewhere?: string }} Platform
 */

/** Every platform of package.json's napi.targets, with its npm/<platform>/package.json. @returns {Platform[]} */
export function platforms(root = '.') {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  return pkg.napi.targets.map((triple) => {
    // napi-rs's own naming, as `napi create-npm-dirs` and the generated loader use it.
    const platform = parseTriple(triple).platformArchABI;
    const dir = join(root, 'npm', platform, 'package.json');
    if (!existsSync(dir)) throw new Error(`no ${dir} for ${triple}: run \`npx napi create-npm-dirs\``);
    const { name, main, os, cpu, libc } = JSON.parse(readFileSync(dir, 'utf8'));
    const build = BUILDS[triple];
    const elsewhere = ELSEWHERE[triple];
    if (!build || (!build.zigTarget && !elsewhere)) throw new Error(`scripts/platforms.mjs says neither how to build ${triple} nor why not`);
    return { platform, triple, name, main, os, cpu, libc, build, elsewhere };
  });
}

/** The platform this process runs on, in the napi-rs naming (`linux-x64-gnu`, `darwin-arm64`, …). */
export function hostPlatform() {
  const { platform, arch } = process;
  if (platform !== 'linux') return `${platform}-${arch}${platform === 'win32' ? '-msvc' : ''}`;
  const glibc = process.report?.getReport?.().header?.glibcVersionRuntime;
  return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
}

/** npm's tarball file name of a package at a version (`@scope/name` → `scope-name-<v>.tgz`). */
export function tarballName(name, version) {
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
}
