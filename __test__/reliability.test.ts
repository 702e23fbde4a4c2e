// Reliability: crashes at any point, concurrent exports, a dying server, a full disk, hostile names, secrets.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRunSlices, verifyLakeDir, type LakeProgressEvent } from '#native';
import { LakeExporterService } from '../lib/service.js';
import { chQuery, clickhouseUrl, connection, startOwnServer } from './support/clickhouse.js';
import { quantbot, startQuantbot } from './support/cli.js';
import { rejection } from './support/errors.js';
import { MINTS, T0, useCandleFixture, lit } from './support/fixture.js';
import { filesUnder, runConfig, runsDirEntries, tempDir } from './support/lake.js';

const SECRET = 's3cret-pa55';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Entries of a runs directory other than lock files: published runs and any debris. */
describe('reliability', () => {
  let db: string;
  let work: string;
  let alerts: string;
  let env: Record<string, string>;
  const report: Record<string, number> = {};

  const fixture = useCandleFixture('rel');
  beforeAll(async () => {
    db = fixture.db;
    work = tempDir('lake-rel');
    alerts = join(work, 'alerts.csv');
    writeFileSync(alerts, ['alert_id,mint,ts', ...MINTS.map((m, i) => `r${i},${m},${T0 + 3600 + i * 600}`)].join('\n') + '\n');
    const url = clickhouseUrl();
    env = { CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port, CLICKHOUSE_DATABASE: db };
  });
  afterAll(() => {
    console.log(`reliability numbers: ${JSON.stringify(report)}`);
  });

  const exportArgs = (root: string, runId: string, extra: string[] = []) => [
    'lake', 'export-run-slices', '--run-id', runId, '--interval', '1m', '--window', 'pre60_post120', '--alerts', alerts,
    '--data-root', root, '--concurrency', '1', ...extra,
  ];

  it('a crash at a named fail point never publishes, and the next export cleans up', () => {
    const root = join(work, 'failpoints');
    for (const point of ['export.staging_created', 'export.write_mint', 'export.before_publish']) {
      const crashed = quantbot(exportArgs(root, 'fp'), { ...env, QUANTBOT_LAKE_FAILPOINT: `${point}:abort` });
      expect(crashed.signal, point).toBe('SIGABRT');
      expect(runsDirEntries(root).filter((n) => n.startsWith('run_id=')), point).toEqual([]);
      expect(runsDirEntries(root).some((n) => n.startsWith('.staging-')), `${point} leaves staging debris`).toBe(true);
    }
    const ok = quantbot(exportArgs(root, 'fp'), env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(runsDirEntries(root)).toEqual(['run_id=fp']);
    report.fail_points = 3;
  });

  it('SIGKILL at 20 points during fresh exports and overwrites: every run directory verifies', async () => {
    const root = join(work, 'kills');
    // Each bucket write sleeps 40 ms, stretching the export over about a second.
    const slow = { ...env, QUANTBOT_LAKE_FAILPOINT: 'export.write_mint:sleep=40' };
    const started = Date.now();
    expect(quantbot(exportArgs(root, 'victim'), slow).code).toBe(0);
    const duration = Date.now() - started;
    let kills = 0;
    let verified = 0;
    for (let i = 1; i <= 20; i++) {
      const overwrite = i % 2 === 0;
      const runId = overwrite ? 'victim' : `fresh-${i}`;
      const { child, done } = startQuantbot(exportArgs(root, runId, overwrite ? ['--overwrite'] : []), slow);
      await sleep(Math.round((duration * i) / 21));
      child.kill('SIGKILL');
      const exit = await done;
      if (exit.signal === 'SIGKILL') kills++;
      const runDir = join(root, 'lake', 'runs', `run_id=${runId}`);
      if (existsSync(runDir)) {
        const r = await verifyLakeDir(runDir);
        expect(r.ok, `${runId} after a kill at ${i}/21: ${JSON.stringify(r.problems)}`).toBe(true);
        verified++;
      } else {
        expect(overwrite, 'an overwritten run never disappears').toBe(false);
      }
    }
    expect(kills).toBeGreaterThanOrEqual(15);
    const again = quantbot(exportArgs(root, 'victim', ['--overwrite']), env);
    expect(again.code, again.stderr).toBe(0);
    expect(runsDirEntries(root).filter((n) => n.startsWith('.')), 'the next export removed every crashed export\'s debris').toEqual([]);
    report.kills = kills;
    report.runs_verified_after_kill = verified;
  });

  it('without an atomic exchange (the fallback of platforms and file systems that lack one), an overwrite still never mixes runs, and a crash between its two renames is undone', async () => {
    const root = join(work, 'no-exchange');
    const runDir = join(root, 'lake', 'runs', 'run_id=swap');
    const first = quantbot(exportArgs(root, 'swap'), env);
    expect(first.code, first.stderr).toBe(0);
    const before = filesUnder(runDir);

    // The old run set aside, the process dead before the new one is moved in: no run where readers look...
    const crashed = quantbot(exportArgs(root, 'swap', ['--overwrite']), { ...env, QUANTBOT_LAKE_FAILPOINT: 'rename_exchange:off,publish.set_aside:abort' });
    expect(crashed.signal).toBe('SIGABRT');
    expect(runsDirEntries(root).filter((n) => n.startsWith('run_id='))).toEqual([]);
    expect(runsDirEntries(root).some((n) => n.startsWith('.replaced-run_id=swap.'))).toBe(true);
    // ...and the next export of the run puts the old one back before it decides anything.
    const again = quantbot(exportArgs(root, 'swap'), env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('RUN_EXISTS');
    expect(filesUnder(runDir)).toEqual(before);

    const overwrite = quantbot(exportArgs(root, 'swap', ['--overwrite']), { ...env, QUANTBOT_LAKE_FAILPOINT: 'rename_exchange:off' });
    expect(overwrite.code, overwrite.stderr).toBe(0);
    expect((await verifyLakeDir(runDir)).ok).toBe(true);
    expect(runsDirEntries(root)).toEqual(['run_id=swap']);
  });

  it('two exports of the same run at once: one wins, the other gets RUN_LOCKED', async () => {
    const root = join(work, 'race');
    const slow = { ...env, QUANTBOT_LAKE_FAILPOINT: 'export.write_mint:sleep=100' };
    const a = startQuantbot(exportArgs(root, 'race'), slow);
    await sleep(150);
    const b = startQuantbot(exportArgs(root, 'race', ['--overwrite']), slow);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect([ra.code, rb.code].sort()).toEqual([0, 1]);
    expect((ra.code === 1 ? ra : rb).stderr).toContain('RUN_LOCKED');
    expect((await verifyLakeDir(join(root, 'lake', 'runs', 'run_id=race'))).ok).toBe(true);
  });

  it('a server that dies mid-export and stays down past the retry budget fails with a ClickHouse code and publishes nothing', async () => {
    const server = await startOwnServer();
    const url = server.url;
    try {
      await server.q(`INSERT INTO quantbot.ohlcv_candles SELECT concat('M', toString(number % 200)), 'solana', ` +
        `toDateTime(${T0} + intDiv(number, 200) * 60), 60, 1, 1, 1, 1, 1 FROM system.numbers LIMIT 2000000`);
      const many = join(work, 'many.csv');
      // Windows over all 10,000 minutes of 200 mints: over 100 MB, far more than the mints queued in the exporter
      // and the socket buffers hold, so the stream still needs the server when it dies.
      writeFileSync(many, ['mint,ts', ...Array.from({ length: 200 }, (_, i) => `M${i},${T0 + 9999 * 60}`)].join('\n') + '\n');
      const root = join(work, 'dying');
      const run = startQuantbot(
        ['lake', 'export-run-slices', '--run-id', 'dying', '--interval', '1m', '--window', 'pre9999_post0', '--alerts', many,
          '--data-root', root, '--concurrency', '1'],
        { CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port, CLICKHOUSE_RETRIES: '2', QUANTBOT_LAKE_FAILPOINT: 'export.write_mint:sleep=150' },
      );
      await sleep(1200);
      // Death, not a graceful stop: a SIGTERMed server finishes what its open connections ask.
      server.kill();
      const exit = await run.done;
      expect(exit.code, exit.stderr).toBe(1);
      expect(exit.stderr).toMatch(/CLICKHOUSE_(UNREACHABLE|QUERY)/);
      expect(exit.stderr).toMatch(/gave up after \d+ attempts/);
      expect(runsDirEntries(root)).toEqual([]);
    } finally {
      server.stop();
    }
  });

  const isRoot = process.getuid?.() === 0;
  if (!isRoot) console.log('disk-full test skipped: mounting a small tmpfs needs root');
  it.skipIf(!isRoot)('a full disk fails with IO, publishes nothing and leaves the sealed run beside it intact', async (ctx) => {
    const mnt = join(work, 'tiny');
    mkdirSync(mnt);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      const reason = `disk-full test skipped: cannot mount a tmpfs (${mounted.stderr.trim()})`;
      console.log(reason);
      ctx.skip(reason);
    }
    try {
      const small = await exportRunSlices(runConfig(db, mnt, alerts, { run_id: 'small', window: 'pre5_post5' }));
      const before = filesUnder(small.run_dir);
      const big = join(work, 'big.csv');
      writeFileSync(big, ['mint,ts', ...MINTS.map((m) => `${m},${T0 + 1440 * 60}`)].join('\n') + '\n');
      const err = await rejection(
        exportRunSlices(runConfig(db, mnt, big, { run_id: 'big', window: 'pre1440_post1440', compression: 'none' })),
      );
      expect(err.code).toBe('IO');
      expect(err.message).toMatch(/space|No space/i);
      expect(runsDirEntries(mnt)).toEqual(['run_id=small']);
      expect((await verifyLakeDir(small.run_dir)).ok).toBe(true);
      const after = filesUnder(small.run_dir);
      expect([...after.keys()]).toEqual([...before.keys()]);
      for (const [p, b] of before) expect(after.get(p)!.equals(b)).toBe(true);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('quotes and SQL in mints and chain are data, never SQL; bad identifiers are refused', async () => {
    await chQuery(`CREATE TABLE ${db}.sentinel (x UInt8) ENGINE = Memory`);
    await chQuery(`INSERT INTO ${db}.sentinel VALUES (1)`);
    const evil = [
      `x'); DROP TABLE ${db}.sentinel; --`,
      `' OR '1'='1`,
      `\\' OR 1=1 --`,
      `"; DROP DATABASE ${db}; --`,
      `${MINTS[4]}`, // a real mint whose name holds a quote
    ];
    const evilCsv = join(work, 'evil.csv');
    const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
    writeFileSync(evilCsv, ['alert_id,mint,ts', ...evil.map((m, i) => `e${i},${q(m)},${T0 + 7200}`)].join('\n') + '\n');
    const r = await exportRunSlices(runConfig(db, join(work, 'evil'), evilCsv));
    const coverage = await (await import('./support/lake.js')).coverageRows(r.coverage_path);
    expect(coverage.map((c) => c.mint)).toEqual(evil);
    expect(coverage.slice(0, 4).every((c) => c.status === 'insufficient')).toBe(true);
    expect(coverage[4]!.available_total).toBeGreaterThan(0);

    const chainAttack = await exportRunSlices(runConfig(db, join(work, 'evil-chain'), alerts, { chain: "solana' OR '1'='1" }));
    expect(chainAttack.total_rows).toBe(0);

    for (const patch of [{ database: `${db}; DROP TABLE ${db}.sentinel` }, { table: "ohlcv_candles` WHERE 1; DROP TABLE x; --" }]) {
      const err = await rejection(exportRunSlices({ ...runConfig(db, join(work, 'evil-id'), alerts), clickhouse: { ...connection(db, 'ohlcv_candles'), ...patch } }));
      expect(err.code).toBe('INVALID_CONFIG');
    }
    expect((await chQuery(`SELECT count() FROM ${db}.sentinel`)).trim()).toBe('1');
    expect((await chQuery(`EXISTS DATABASE ${db}`).catch(() => chQuery(`SELECT count() FROM system.databases WHERE name = ${lit(db)}`))).trim()).toBe('1');
    report.injections_attempted = evil.length + 3;
  });

  it('the password appears in no file, log line, error or progress event', async () => {
    const logs: string[] = [];
    const events: LakeProgressEvent[] = [];
    const service = new LakeExporterService({
      logger: { info: (m, f) => logs.push(m + JSON.stringify(f)), error: (m, f) => logs.push(m + JSON.stringify(f)) },
    });
    const root = join(work, 'secret');
    const cfg = { ...runConfig(db, root, alerts, { run_id: 'secret' }), clickhouse: connection(db, 'ohlcv_candles', { user: 'tester', password: SECRET }) };
    const result = await service.exportRunSlices(cfg, { onProgress: (e) => events.push(e) });
    const errors: string[] = [];
    for (const bad of [{ table: 'missing_table' }, { database: 'missing_db' }, { port: 1, retries: 0 }]) {
      const err = await rejection(service.exportRunSlices({ ...cfg, run_id: 'secret-fail', clickhouse: { ...cfg.clickhouse, ...bad } }));
      errors.push(`${err.code} ${err.message}`);
    }
    const cli = quantbot(
      ['lake', 'export-run-slices', '--run-id', 'secret-cli', '--interval', '1m', '--window', 'pre5_post5', '--alerts', alerts, '--data-root', root,
        '--table', 'missing_table', '--clickhouse-url', `http://tester:${SECRET}@${clickhouseUrl().host}/${db}`],
      {},
    );
    expect(cli.code).toBe(1);
    const haystacks = [
      JSON.stringify(result), JSON.stringify(events), logs.join('\n'), errors.join('\n'), cli.stdout, cli.stderr,
      ...[...filesUnder(result.run_dir).values()].map((b) => b.toString('latin1')),
    ];
    expect(haystacks.filter((h) => h.includes(SECRET))).toEqual([]);
    expect(readFileSync(result.manifest_path, 'utf8')).not.toContain('tester:');
  });
});
