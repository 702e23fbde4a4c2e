import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { connection } from './support/clickhouse.js';
import { MINTS, T0, expectedCandles, useCandleFixture, windowOf } from './support/fixture.js';
import { tempDir } from './support/lake.js';

/** Where scripts/test.sh packs the tarballs (`npm run pack -- .test-output/pack`). */
const PACK_DIR = resolve(process.env.QUANTBOT_PACK_DIR ?? '.test-output/pack');
const ROOT = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string; version: string };
const PLATFORM = JSON.parse(readFileSync('npm/linux-x64-gnu/package.json', 'utf8')) as { name: string; main: string };
const tarball = (name: string) => join(PACK_DIR, `${name.replace(/^@/, '').replace('/', '-')}-${ROOT.version}.tgz`);
const listing = (tgz: string) => execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
const packedJson = (tgz: string) => JSON.parse(execFileSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' }));

/** PATH without any directory that holds a Rust toolchain: the user has none. */
function pathWithoutRust(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !['cargo', 'rustc', 'rustup'].some((tool) => existsSync(join(dir, tool))))
    .join(delimiter);
}

describe('the npm packages, as a user installs them', () => {
  const fixture = useCandleFixture('pack');
  let present = false;
  beforeAll(() => {
    present = existsSync(tarball(ROOT.name)) && existsSync(tarball(PLATFORM.name));
    if (!present && process.env.QUANTBOT_REQUIRE_PACK) {
      throw new Error(`no tarballs in ${PACK_DIR}: scripts/test.sh runs \`npm run pack -- .test-output/pack\` first`);
    }
  });

  it('hold every file they need and nothing of the build', (ctx) => {
    if (!present) ctx.skip(`no tarballs in ${PACK_DIR}: run \`npm run pack -- .test-output/pack\` first`);
    const main = listing(tarball(ROOT.name));
    for (const f of ['package/package.json', 'package/README.md', 'package/LICENSE', 'package/index.js', 'package/index.d.ts',
      'package/dist/lib/index.js', 'package/dist/lib/index.d.ts', 'package/dist/lib/service.js', 'package/dist/lib/schemas.js',
      'package/dist/lib/cli/bin.js', 'package/dist/lib/cli/main.js']) {
      expect(main, f).toContain(f);
    }
    expect(main.filter((f) => f.endsWith('.node') || f.includes('/src/') || f.includes('__test__') || f.includes('target/'))).toEqual([]);
    const mainJson = packedJson(tarball(ROOT.name));
    expect(mainJson.optionalDependencies).toEqual({ [PLATFORM.name]: ROOT.version });
    expect(mainJson.dependencies).toMatchObject({ commander: expect.any(String), zod: expect.any(String) });
    expect(mainJson.devDependencies).toBeUndefined();
    expect(mainJson.private).toBeUndefined();
    expect(mainJson.bin).toEqual({ quantbot: './dist/lib/cli/bin.js' });

    const platform = listing(tarball(PLATFORM.name));
    expect(platform).toEqual(['package/LICENSE', 'package/README.md', `package/${PLATFORM.main}`, 'package/package.json'].sort());
    expect(packedJson(tarball(PLATFORM.name))).toMatchObject({ name: PLATFORM.name, version: ROOT.version, os: ['linux'], cpu: ['x64'], libc: ['glibc'] });
  });

  it('carry a release binary that needs glibc 2.17 at most', (ctx) => {
    if (!present) ctx.skip(`no tarballs in ${PACK_DIR}: run \`npm run pack -- .test-output/pack\` first`);
    const dir = tempDir('lake-pack-bin');
    execFileSync('tar', ['-xzf', tarball(PLATFORM.name), '-C', dir]);
    const binary = join(dir, 'package', PLATFORM.main);
    const symbols = execFileSync('objdump', ['-T', binary], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const versions = [...new Set([...symbols.matchAll(/GLIBC_(\d+)\.(\d+)(?:\.(\d+))?/g)].map((m) => m.slice(1).map(Number)))];
    expect(versions.length).toBeGreaterThan(0);
    const newest = versions.reduce((a, b) => (b[0]! * 1000 + b[1]! > a[0]! * 1000 + a[1]! ? b : a));
    expect(newest[0]! * 1000 + newest[1]!, `newest symbol version GLIBC_${newest.join('.')}`).toBeLessThanOrEqual(2017);
    const mib = statSync(binary).size / 2 ** 20;
    console.log(`linux-x64-gnu binary: ${mib.toFixed(1)} MiB, newest glibc symbol GLIBC_${newest.filter((n) => !Number.isNaN(n)).join('.')}`);
    expect(mib).toBeLessThan(64);
  });

  it('install into an empty project without Rust, export against the server, and run the CLI', async (ctx) => {
    if (!present) ctx.skip(`no tarballs in ${PACK_DIR}: run \`npm run pack -- .test-output/pack\` first`);
    const project = tempDir('lake-user-project');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true, type: 'module' }));
    const env = { ...process.env, PATH: pathWithoutRust() };
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { cwd: project, env, encoding: 'utf8', timeout: 180_000 });
      expect(r.status, `${cmd} ${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    expect(spawnSync('cargo', ['--version'], { env }).error, 'no cargo on the PATH for this step').toBeDefined();
    // commander and zod come from the registry; the two packages from their tarballs.
    run('npm', ['install', '--no-audit', '--no-fund', tarball(PLATFORM.name), tarball(ROOT.name)]);
    expect(readdirSync(join(project, 'node_modules', '@quantbot')).sort()).toEqual(['lake', 'lake-linux-x64-gnu']);

    writeFileSync(join(project, 'alerts.csv'), `alert_id,mint,ts\na,${MINTS[0]},${T0 + 3600}\nb,${MINTS[1]},${T0 + 7200}\n`);
    writeFileSync(
      join(project, 'export.mjs'),
      `import { LakeExporterService } from '@quantbot/lake';
const lake = new LakeExporterService();
const result = await lake.exportRunSlices(${JSON.stringify({
        data_root: join(project, 'data'),
        run_id: 'installed',
        interval: '1m',
        window: 'pre10_post20',
        alerts_path: join(project, 'alerts.csv'),
        clickhouse: connection(fixture.db, 'ohlcv_candles'),
      })});
const report = await lake.verifyRun(result.run_dir);
console.log(JSON.stringify({ rows: result.total_rows, kept: result.kept_events, ok: report.ok }));
`,
    );
    const expected = await expectedCandles(fixture.db, [
      windowOf(MINTS[0]!, (T0 + 3600) * 1000, 60, 10, 20),
      windowOf(MINTS[1]!, (T0 + 7200) * 1000, 60, 10, 20),
    ]);
    expect(JSON.parse(run(process.execPath, ['export.mjs']).trim())).toEqual({ rows: expected.length, kept: 2, ok: true });
    expect(run('npx', ['quantbot', '--version']).trim()).toBe(ROOT.version);
    expect(run('npx', ['quantbot', 'lake', '--help'])).toContain('export-run-slices');
  });
});
