// Builds, checks and packs the npm packages (see scripts/pack.sh):
//   node scripts/pack.mjs [--platforms linux-x64-gnu,linux-arm64-gnu | --host] [OUT_DIR]
// Every platform of scripts/platforms.mjs that can be built here is cross-built with cargo-zigbuild (release),
// checked from the file (scripts/binary-check.mjs) and packed as @quantbot/lake-<platform>; then the main
// package, which lists every platform package as an optional dependency of the same version: npm installs the
// one whose os/cpu/libc match, and the generated loader (index.js) finds it. The repository's package.json stays
// as contributors need it; the packed one is what users install.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkBinary } from './binary-check.mjs';
import { hostPlatform, platforms } from './platforms.mjs';

const args = process.argv.slice(2);
let only = null;
let out = 'pack';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--platforms') only = (args[++i] ?? '').split(',').filter(Boolean);
  else if (args[i] === '--host') only = [hostPlatform()];
  else if (args[i].startsWith('-')) {
    console.error(`unknown flag ${args[i]}; usage: npm run pack -- [--platforms a,b | --host] [OUT_DIR]`);
    process.exit(2);
  } else out = args[i];
}
out = resolve(out);
mkdirSync(out, { recursive: true });

const root = JSON.parse(readFileSync('package.json', 'utf8'));
const all = platforms();
const unknown = (only ?? []).filter((p) => !all.some((x) => x.platform === p));
if (unknown.length) {
  console.error(`unknown platform ${unknown.join(', ')}; known: ${all.map((p) => p.platform).join(', ')}`);
  process.exit(2);
}
const wanted = all.filter((p) => !only || only.includes(p.platform));
const json = (o) => `${JSON.stringify(o, null, 2)}\n`;
const say = (msg) => console.error(`==> ${msg}`);

/** Rust standard libraries of the targets to build (rustup's, about 30 s each on first use). */
function ensureTargets(triples) {
  const installed = execFileSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' }).split('\n');
  const missing = triples.filter((t) => !installed.includes(t));
  if (missing.length) execFileSync('rustup', ['target', 'add', ...missing], { stdio: 'inherit' });
}

/** How this machine builds `p`: cargo-zigbuild on Linux, plain cargo on a machine of the target's own OS (the
 * release workflow's macOS and Windows runners); null when it cannot. */
function buildPlan(p) {
  if (process.platform !== 'linux' && process.platform === p.os[0]) return { cargo: 'build', target: p.triple };
  if (process.platform === 'linux' && p.build.zigTarget) return { cargo: 'zigbuild', target: p.build.zigTarget };
  return null;
}

/**
 * A directory of Apple framework stubs for a linker without the macOS SDK (Zig): text-based stubs (`.tbd`, the
 * format of the SDK's own) that give each framework its install name and export nothing. The addon is linked
 * with `-undefined dynamic_lookup`, as every Node addon on macOS is, so the framework's symbols are bound when
 * macOS loads it, from the framework the stub names. On a Mac the real SDK is used instead.
 */
function frameworkStubs(names) {
  const dir = resolve('target', 'macos-framework-stubs');
  for (const name of names) {
    mkdirSync(join(dir, `${name}.framework`), { recursive: true });
    writeFileSync(
      join(dir, `${name}.framework`, `${name}.tbd`),
      ['--- !tapi-tbd', 'tbd-version:     4', 'targets:         [ x86_64-macos, arm64-macos ]',
        `install-name:    '/System/Library/Frameworks/${name}.framework/Versions/A/${name}'`, 'current-version: 1', '...', ''].join('\n'),
    );
  }
  return dir;
}

/** Release build of one platform; returns the binary's path, or throws with the build's first error lines. */
function build(p, plan) {
  const env = { ...process.env };
  const rustflags = [p.build.rustflags ?? ''];
  if (p.os[0] === 'darwin') {
    // The install name is the package's file name, not the build machine's path of the file.
    rustflags.push(`-C link-arg=-Wl,-install_name,@rpath/${p.main}`);
    if (plan.cargo === 'zigbuild' && p.build.frameworks) rustflags.push(`-C link-arg=-F${frameworkStubs(p.build.frameworks)}`);
  }
  const flags = rustflags.filter(Boolean).join(' ');
  if (flags) env[`CARGO_TARGET_${p.triple.toUpperCase().replaceAll('-', '_')}_RUSTFLAGS`] = flags;
  if (p.build.macos) env.MACOSX_DEPLOYMENT_TARGET = p.build.macos;
  mkdirSync(join('target', 'pack-logs'), { recursive: true });
  const log = resolve('target', 'pack-logs', `${p.platform}.log`);
  const fd = openSync(log, 'w');
  const r = spawnSync('cargo', [plan.cargo, '--release', '--locked', '-p', 'quantbot-lake', '--target', plan.target], { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (r.status !== 0) {
    const lines = readFileSync(log, 'utf8').split('\n');
    const firstError = lines.findIndex((l) => /^error/.test(l));
    const excerpt = (firstError >= 0 ? lines.slice(firstError, firstError + 12) : lines.slice(-12)).join('\n');
    throw new Error(`cargo ${plan.cargo} --target ${plan.target} failed (whole log: ${log}):\n${excerpt}`);
  }
  const file = { darwin: 'libquantbot_lake.dylib', win32: 'quantbot_lake.dll' }[p.os[0]] ?? 'libquantbot_lake.so';
  return join('target', p.triple, 'release', file);
}

/** `npm pack` of a staged directory into `out`; returns the tarball's path. */
function pack(dir) {
  const res = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: dir, encoding: 'utf8' }));
  return join(out, res[0].filename);
}

const stage = mkdtempSync(join(tmpdir(), 'quantbot-lake-pack-'));
const tarballs = [];
const failed = [];
const elsewhere = [];
try {
  ensureTargets(wanted.filter((p) => buildPlan(p)).map((p) => p.triple));
  for (const p of wanted) {
    const plan = buildPlan(p);
    if (!plan) {
      elsewhere.push(`${p.platform}: not built here: ${p.elsewhere ?? `needs a ${p.os[0]} machine`}`);
      continue;
    }
    say(`release addon for ${p.platform} (cargo ${plan.cargo} --target ${plan.target})`);
    let binary;
    try {
      binary = build(p, plan);
    } catch (e) {
      failed.push(`${p.platform}: ${e.message}`);
      continue;
    }
    if (p.os[0] === 'win32') {
      say(`${p.platform}: a PE file is not checked here; the release workflow loads it on its Windows runner`);
    } else {
      const facts = checkBinary(binary, p);
      say(`${p.platform}: ${facts.format}, ${facts.machine}, needs ${facts.libraries.join(' ')}` +
        (facts.minOs ? `, macOS >= ${facts.minOs}` : '') + (facts.newestGlibc ? `, GLIBC_${facts.newestGlibc}` : ''));
      if (facts.problems.length) {
        failed.push(`${p.platform}: the binary fails its checks: ${facts.problems.join('; ')}`);
        continue;
      }
    }
    const dir = join(stage, p.platform);
    mkdirSync(dir);
    copyFileSync(binary, join(dir, p.main));
    const platformJson = JSON.parse(readFileSync(join('npm', p.platform, 'package.json'), 'utf8'));
    writeFileSync(join(dir, 'package.json'), json({ ...platformJson, version: root.version, publishConfig: { access: 'public' } }));
    writeFileSync(
      join(dir, 'README.md'),
      `# ${p.name}\n\nThe ${p.platform} binary (${p.triple}) of [${root.name}](https://www.npmjs.com/package/${root.name}). ` +
        `Install ${root.name}, not this package: npm picks it as an optional dependency.\n`,
    );
    copyFileSync('LICENSE', join(dir, 'LICENSE'));
    tarballs.push(pack(dir));
  }

  // The main package: loader, types, compiled TypeScript, and every platform as an optional dependency.
  const m = join(stage, 'main');
  mkdirSync(m);
  for (const f of ['index.js', 'index.d.ts', 'native.js', 'README.md', 'LICENSE']) copyFileSync(f, join(m, f));
  cpSync('dist/lib', join(m, 'dist/lib'), { recursive: true });
  const { private: _private, devDependencies: _dev, scripts: _scripts, ...published } = root;
  const optionalDependencies = Object.fromEntries(all.map((p) => [p.name, root.version]));
  writeFileSync(join(m, 'package.json'), json({ ...published, optionalDependencies, publishConfig: { access: 'public' } }));
  tarballs.push(pack(m));
} finally {
  rmSync(stage, { recursive: true, force: true });
}

for (const t of tarballs) console.log(t);
for (const line of elsewhere) say(line);
if (failed.length) {
  for (const line of failed) console.error(`\n==> NOT PACKED ${line}`);
  process.exit(1);
}
