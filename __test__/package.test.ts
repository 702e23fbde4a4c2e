import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkBinary } from '../scripts/binary-check.mjs';
import { hostPlatform, platforms, tarballName } from '../scripts/platforms.mjs';
import { connection } from './support/clickhouse.js';
import { MINTS, T0, expectedCandles, useCandleFixture, windowOf } from './support/fixture.js';
import { filesUnder, tempDir } from './support/files.js';

// Imports nothing of the repository's own build and no dev dependency with native parts, so that the release
// workflow runs this file on every platform's runner against the packed tarballs (README, "Install").

/** Where scripts/test.sh packs the tarballs (`npm run pack -- --platforms … .test-output/pack`). */
const PACK_DIR = resolve(process.env.QUANTBOT_PACK_DIR ?? '.test-output/pack');
const ROOT = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string; version: string };
const ALL = platforms();
const HOST = ALL.find((p) => p.platform === hostPlatform());
const tarball = (name: string) => join(PACK_DIR, tarballName(name, ROOT.version));
const listing = (tgz: string) => execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
const packedJson = (tgz: string) => JSON.parse(execFileSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' }));
const packed = () => ALL.filter((p) => existsSync(tarball(p.name)));

/** PATH without any directory that holds a Rust toolchain: the user has none. */
function pathWithoutRust(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !['cargo', 'rustc', 'rustup', 'cargo.exe'].some((tool) => existsSync(join(dir, tool))))
    .join(delimiter);
}

/** An empty user project, ESM, with the alerts every install test exports. */
function userProject(prefix: string): string {
  const project = tempDir(prefix);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true, type: 'module' }));
  writeFileSync(join(project, 'alerts.csv'), ['alert_id,mint,ts', ...MINTS.map((m, i) => `a${i},"${m.replaceAll('"', '""')}",${T0 + 3600 + i * 600}`)].join('\n') + '\n');
  return project;
}

/** export.mjs in `project`: one run-slice export through the installed package, verified, summarised as JSON. */
function exportScript(project: string, db: string): void {
  writeFileSync(
    join(project, 'export.mjs'),
    `import { LakeExporterService } from '@quantbot/lake';
const lake = new LakeExporterService();
const result = await lake.exportRunSlices(${JSON.stringify({
      data_root: join(project, 'data'),
      run_id: 'installed',
      interval: '1m',
      window: 'pre60_post120',
      alerts_path: join(project, 'alerts.csv'),
      clickhouse: connection(db, 'ohlcv_candles'),
    })});
const report = await lake.verifyRun(result.run_dir);
console.log(JSON.stringify({ rows: result.total_rows, kept: result.kept_events, ok: report.ok, dir: result.run_dir, arch: process.arch }));
`,
  );
}

/** The files of a run that must not depend on the machine: everything but the manifest (time, host-side fields). */
function machineIndependentFiles(runDir: string): Map<string, Buffer> {
  return new Map([...filesUnder(runDir)].filter(([path]) => path !== 'manifest.json'));
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  expect(r.status, `${what}: ${r.error ?? ''}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('the npm packages, as a user installs them', () => {
  // The Windows runners have no ClickHouse: there the export step says it is skipped and why.
  const fixture = process.env.CLICKHOUSE_URL ? useCandleFixture('pack') : null;
  let present = false;
  let hostRun: string | undefined;
  let hostProject: string | undefined;
  beforeAll(() => {
    present = !!HOST && existsSync(tarball(ROOT.name)) && existsSync(tarball(HOST.name));
    if (!present && process.env.QUANTBOT_REQUIRE_PACK) {
      throw new Error(`no tarballs for ${hostPlatform()} in ${PACK_DIR}: scripts/test.sh runs \`npm run pack\` first`);
    }
  });

  it('hold every file they need and nothing of the build', (ctx) => {
    if (!present) ctx.skip(`no tarballs in ${PACK_DIR}: run \`npm run pack -- --host .test-output/pack\` first`);
    const main = listing(tarball(ROOT.name));
    for (const f of ['package/package.json', 'package/README.md', 'package/LICENSE', 'package/index.js', 'package/index.d.ts',
      'package/native.js', 'package/dist/lib/index.js', 'package/dist/lib/index.d.ts', 'package/dist/lib/service.js',
      'package/dist/lib/schemas.js', 'package/dist/lib/cli/bin.js', 'package/dist/lib/cli/main.js']) {
      expect(main, f).toContain(f);
    }
    expect(main.filter((f) => f.endsWith('.node') || f.includes('/src/') || f.includes('__test__') || f.includes('target/'))).toEqual([]);
    const mainJson = packedJson(tarball(ROOT.name));
    // Every platform, so that npm picks the one that matches wherever the package is installed.
    expect(mainJson.optionalDependencies).toEqual(Object.fromEntries(ALL.map((p) => [p.name, ROOT.version])));
    expect(Object.keys(mainJson.optionalDependencies)).toHaveLength(7);
    expect(mainJson.dependencies).toMatchObject({ commander: expect.any(String), zod: expect.any(String) });
    expect(mainJson.devDependencies).toBeUndefined();
    expect(mainJson.private).toBeUndefined();
    expect(mainJson.bin).toEqual({ quantbot: './dist/lib/cli/bin.js' });
    expect(mainJson.imports).toEqual({ '#native': { types: './index.d.ts', default: './native.js' } });

    for (const p of packed()) {
      expect(listing(tarball(p.name)), p.platform).toEqual(['package/LICENSE', 'package/README.md', `package/${p.main}`, 'package/package.json'].sort());
      const json = packedJson(tarball(p.name));
      expect(json, p.platform).toMatchObject({ name: p.name, version: ROOT.version, os: p.os, cpu: p.cpu, main: p.main });
      expect(json.libc, p.platform).toEqual(p.libc);
    }
  });

  it('carry binaries that pass the checks a file allows: format, architecture, entry point, OS floor, libraries', (ctx) => {
    if (!present) ctx.skip(`no tarballs in ${PACK_DIR}: run \`npm run pack\` first`);
    const checkable = packed().filter((p) => p.os[0] !== 'win32'); // PE files are tested by loading them on Windows
    if (HOST!.os[0] !== 'win32') expect(checkable.map((p) => p.platform)).toContain(HOST!.platform);
    for (const p of checkable) {
      const dir = tempDir(`lake-pack-${p.platform}`);
      execFileSync('tar', ['-xzf', tarball(p.name), '-C', dir]);
      const facts = checkBinary(join(dir, 'package', p.main), p);
      console.log(`${p.platform}: ${JSON.stringify(facts)}`);
      expect(facts.problems, p.platform).toEqual([]);
      expect(facts.exportsNapi).toBe(true);
      if (p.libc?.[0] === 'glibc') expect(facts.newestGlibc, p.platform).toBeDefined();
    }
  });

  it('install into an empty project without Rust, export against the server, verify, and run the CLI', async (ctx) => {
    if (!present) ctx.skip(`no tarballs in ${PACK_DIR}: run \`npm run pack\` first`);
    const project = userProject('lake-user-project');
    const env = { ...process.env, PATH: pathWithoutRust() };
    const run = (cmd: string, args: string[]) =>
      ok(spawnSync(cmd, args, { cwd: project, env, encoding: 'utf8', timeout: 300_000, shell: process.platform === 'win32' }), `${cmd} ${args.join(' ')}`);
    expect(spawnSync('cargo', ['--version'], { env }).error, 'no cargo on the PATH for this step').toBeDefined();
    // commander and zod come from the registry; the two packages from their tarballs (npm skips the platform
    // packages of other machines, and those not published yet).
    run('npm', ['install', '--no-audit', '--no-fund', tarball(HOST!.name), tarball(ROOT.name)]);
    expect(readdirSync(join(project, 'node_modules', '@quantbot')).sort()).toEqual(['lake', `lake-${HOST!.platform}`]);
    hostProject = project;
    expect(run('npx', ['quantbot', '--version']).trim()).toBe(ROOT.version);
    expect(run('npx', ['quantbot', 'lake', '--help'])).toContain('export-run-slices');
    const helpers = run(process.execPath, ['--input-type=module', '-e', "import { computeMintBucket } from '@quantbot/lake'; console.log(computeMintBucket('So11111111111111111111111111111111111111112'))"]);
    expect(helpers.trim()).toBe('35');

    if (!fixture) ctx.skip('no ClickHouse on this runner (CLICKHOUSE_URL unset): the export step is left to the platforms that have one');
    exportScript(project, fixture!.db);
    const expected = await expectedCandles(
      fixture!.db,
      MINTS.map((m, i) => windowOf(m, (T0 + 3600 + i * 600) * 1000, 60, 60, 120)),
    );
    const result = JSON.parse(run(process.execPath, ['export.mjs']).trim());
    expect(result).toMatchObject({ rows: expected.length, kept: MINTS.length, ok: true, arch: process.arch });
    hostRun = result.dir;
  });

  it('without the binary for this machine, importing the package and the CLI name the platform and what to do', (ctx) => {
    if (!present || !hostProject) ctx.skip('needs the installed project of the test before');
    const project = hostProject!;
    const binaryPackage = join(project, 'node_modules', '@quantbot', `lake-${HOST!.platform}`);
    const hidden = `${binaryPackage}.hidden`;
    const mainJsonPath = join(project, 'node_modules', '@quantbot', 'lake', 'package.json');
    const mainJson = readFileSync(mainJsonPath, 'utf8');
    const importError = () => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e',
        "try { await import('@quantbot/lake'); console.log('{}') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }"],
      { cwd: project, encoding: 'utf8' });
      return JSON.parse(ok(r, 'import').trim()) as { code?: string; message?: string };
    };
    renameSync(binaryPackage, hidden);
    try {
      // A platform that has a binary package, which npm left out.
      const missing = importError();
      expect(missing.code).toBe('ADDON_NOT_FOUND');
      expect(missing.message).toContain(`@quantbot/lake-${HOST!.platform}, is not installed`);
      expect(missing.message).toContain('npm install again');

      // A platform without a binary: the same package, listing no binary for this one.
      const published = JSON.parse(mainJson);
      delete published.optionalDependencies[HOST!.name];
      writeFileSync(mainJsonPath, JSON.stringify(published));
      const unsupported = importError();
      expect(unsupported.code).toBe('ADDON_NOT_FOUND');
      expect(unsupported.message).toContain(`no prebuilt binary for ${HOST!.platform}`);
      expect(unsupported.message).toContain('npm run build:native');
      expect(unsupported.message).toContain('NAPI_RS_NATIVE_LIBRARY_PATH');

      const cli = spawnSync('npx', ['quantbot', 'lake', 'verify', 'x'], { cwd: project, encoding: 'utf8', shell: process.platform === 'win32' });
      expect(cli.status).toBe(1);
      const lines = cli.stderr.trim().split('\n');
      expect(lines, cli.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^quantbot lake: ADDON_NOT_FOUND: .*no prebuilt binary for ${HOST!.platform}`));
    } finally {
      writeFileSync(mainJsonPath, mainJson);
      renameSync(hidden, binaryPackage);
    }
    expect(importError()).toEqual({});
  });

  describe('linux-arm64-gnu, installed and run under emulation (qemu-user, the official arm64 Node)', () => {
    const qemu = process.env.QUANTBOT_QEMU;
    const sysroot = process.env.QUANTBOT_ARM64_SYSROOT;
    const arm64Node = process.env.QUANTBOT_ARM64_NODE;
    const npmCli = process.env.QUANTBOT_NPM_CLI;
    const arm64 = ALL.find((p) => p.platform === 'linux-arm64-gnu')!;

    it('installs with arm64 npm, exports against the server, verifies, and writes the bytes the x64 build writes', (ctx) => {
      const why = !qemu || !arm64Node || !sysroot || !npmCli ? 'no arm64 Node under qemu (scripts/arm64-node.sh sets it up)'
        : !existsSync(tarball(arm64.name)) ? `no ${arm64.platform} tarball in ${PACK_DIR}`
        : !hostRun || !fixture ? 'needs the x64 export of the install test before' : '';
      if (why && process.env.QUANTBOT_REQUIRE_ARM64) throw new Error(`QUANTBOT_REQUIRE_ARM64 is set but ${why}`);
      if (why) ctx.skip(why);

      const project = userProject('lake-arm64-project');
      const emulated = (args: string[], what: string) =>
        ok(spawnSync(qemu!, ['-L', sysroot!, arm64Node!, ...args], { cwd: project, encoding: 'utf8', timeout: 600_000, env: { ...process.env, PATH: pathWithoutRust() } }), what);
      expect(emulated(['-p', 'process.arch'], 'node').trim()).toBe('arm64');
      emulated([npmCli!, 'install', '--no-audit', '--no-fund', tarball(arm64.name), tarball(ROOT.name)], 'arm64 npm install');
      expect(readdirSync(join(project, 'node_modules', '@quantbot')).sort()).toEqual(['lake', 'lake-linux-arm64-gnu']);

      exportScript(project, fixture!.db);
      const result = JSON.parse(emulated(['export.mjs'], 'arm64 export').trim());
      expect(result).toMatchObject({ ok: true, kept: MINTS.length, arch: 'arm64' });

      const x64 = machineIndependentFiles(hostRun!);
      const a64 = machineIndependentFiles(result.dir);
      expect([...a64.keys()]).toEqual([...x64.keys()]);
      expect([...x64.keys()].filter((p) => p.startsWith('slices/')).length).toBeGreaterThan(5);
      for (const [path, bytes] of x64) expect(a64.get(path)!.equals(bytes), `${path} differs between arm64 and x64`).toBe(true);
      console.log(`linux-arm64-gnu under qemu: ${result.rows} rows in ${a64.size} files, byte-identical to x64`);
    });
  });
});
