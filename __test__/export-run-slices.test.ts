import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportRunSlices, verifyLakeDir, type LakeProgressEvent } from '#native';
import { chQuery } from './support/clickhouse.js';
import { duck, dlit } from './support/duckdb.js';
import { rejection } from './support/errors.js';
import { MINTS, T0, bucketOf, useCandleFixture, expectedCandles, windowOf, type Candle } from './support/fixture.js';
import { coverageRows, filesUnder, runConfig, sliceRows, tempDir } from './support/lake.js';
import { lakeRoots, type LakeRoot } from './support/roots.js';

const PRE = 10;
const POST = 20;

/** Alerts of the main scenario: overlapping windows on one mint, quoted mints, a mint without candles. */
const ALERTS = [
  { id: 'a1', mint: MINTS[0]!, tsMs: (T0 + 30 * 60) * 1000 + 17_000 },
  { id: 'a2', mint: MINTS[0]!, tsMs: (T0 + 45 * 60) * 1000 }, // overlaps a1
  { id: 'a3', mint: MINTS[4]!, tsMs: (T0 + 605 * 60) * 1000 }, // quote mint, around the re-ingested candles
  { id: 'a4', mint: MINTS[5]!, tsMs: (T0 + 5 * 60) * 1000 }, // backslash mint, window starts before the data
  { id: 'a5', mint: 'NoCandlesMint1111111111111111111111111111111', tsMs: (T0 + 100 * 60) * 1000 },
  { id: 'a6', mint: MINTS[9]!, tsMs: (T0 + 2870 * 60) * 1000 }, // window runs past the end of the data
];

function csvOf(rows: Array<{ id: string; mint: string; ts: string }>): string {
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return ['alert_id,mint,ts', ...rows.map((r) => `${q(r.id)},${q(r.mint)},${q(r.ts)}`)].join('\n') + '\n';
}

/** Coverage computed in the test from the expected candles (docs/lake-format.md, "Coverage"), independent of the addon. */
function independentCoverage(candles: Candle[], alerts: typeof ALERTS, strict?: { minPre: number; total: number }) {
  return alerts.map((a) => {
    const w = windowOf(a.mint, a.tsMs, 60, PRE, POST);
    const inside = candles.filter((c) => c.mint === a.mint && c.ts_ms >= w.start && c.ts_ms < w.end).map((c) => c.ts_ms);
    const pre = inside.filter((t) => t < w.anchor).length;
    const total = inside.length;
    const status = total === 0 ? 'insufficient' : pre >= PRE && total >= PRE + POST ? 'complete' : 'partial';
    return {
      alert_id: a.id,
      mint: a.mint,
      anchor_ts_ms: w.anchor,
      available_pre: pre,
      available_post: total - pre,
      available_total: total,
      first_ts_ms: inside.length ? Math.min(...inside) : null,
      last_ts_ms: inside.length ? Math.max(...inside) : null,
      status,
      kept: strict ? pre >= strict.minPre && total >= strict.total : true,
    };
  });
}

/** Directories (runs) directly under `<root>/lake/runs`, hidden names (locks, staging) aside. */
function runsIn(lake: LakeRoot, root: string): string[] {
  const top = lake.list(`${root}/lake/runs`).map((p) => p.split('/')[0]!);
  return [...new Set(top)].filter((n) => !n.startsWith('.') && n.startsWith('run_id=')).sort();
}

describe.each(lakeRoots())('exportRunSlices end to end ($kind)', (lake) => {
  let db: string;
  let work: string;
  let csvPath: string;
  let allCandles: Candle[];
  /** The first test's coverage table, which the alerts-format variants must reproduce. */
  let reference: string;

  const fixture = useCandleFixture('e2e');
  beforeAll(async () => {
    db = fixture.db;
    work = tempDir('lake-e2e');
    csvPath = join(work, 'alerts.csv');
    writeFileSync(
      csvPath,
      csvOf(ALERTS.map((a, i) => ({ id: a.id, mint: a.mint, ts: i % 2 === 0 ? String(a.tsMs / 1000) : new Date(a.tsMs).toISOString() }))),
    );
    allCandles = await expectedCandles(db, ALERTS.map((a) => windowOf(a.mint, a.tsMs, 60, PRE, POST)));
  });

  it('writes exactly the window candles, bucketed, with coverage and a sealed manifest', async () => {
    const root = lake.fresh('csv');
    const result = await exportRunSlices(runConfig(db, root, csvPath));
    const runDir = `${root}/lake/runs/run_id=run-1`;
    expect(result.run_dir).toBe(runDir);
    expect(result.manifest_path).toBe(`${runDir}/manifest.json`);
    expect(result.coverage_path).toBe(`${runDir}/outputs/coverage.parquet`);
    const local = await lake.local(runDir);
    reference = join(local, 'outputs/coverage.parquet');

    const rows = await sliceRows(local);
    expect(rows.map(({ mint_bucket: _b, interval_s: _i, ...c }) => c)).toEqual(allCandles);
    expect(rows.every((r) => r.interval_s === 60 && r.mint_bucket === bucketOf(r.mint))).toBe(true);
    expect(rows.some((r) => r.close === 777.5)).toBe(true); // the re-ingested version won
    expect(result.total_rows).toBe(allCandles.length);
    // Overlapping windows are fetched once; time blocks round each window outwards by at most a window a side.
    expect(result.rows_fetched).toBeGreaterThanOrEqual(allCandles.length);
    expect(result.rows_fetched).toBeLessThanOrEqual(allCandles.length * 3);

    const coverage = await coverageRows(join(local, 'outputs/coverage.parquet'));
    expect(coverage).toEqual(independentCoverage(allCandles, ALERTS));
    expect(coverage.find((c) => c.alert_id === 'a5')!.status).toBe('insufficient');

    const manifest = JSON.parse(readFileSync(join(local, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual(result.manifest);
    expect(Object.keys(manifest)).toEqual([
      'lake_version', 'run_id', 'created_at', 'exporter', 'inputs', 'slice_spec', 'outputs', 'coverage', 'files', 'stats', 'seal',
    ]);
    expect(manifest.slice_spec).toEqual({
      dataset: 'ohlcv', interval: '1m', window: 'pre10_post20', anchor_rule: 'floor_to_interval(ts, interval)', chain: 'solana',
    });
    const out = manifest.outputs['slices/ohlcv/interval=1m/window=pre10_post20'];
    const buckets = [...new Set(rows.map((r) => r.mint_bucket))].sort();
    expect(out).toEqual({ mint_buckets: buckets, files: buckets.length, rows: allCandles.length });
    const dirs = readdirSync(join(local, 'slices/ohlcv/interval=1m/window=pre10_post20')).sort();
    expect(dirs).toEqual(buckets.map((b) => `mint_bucket=${b}`));
    expect(manifest.inputs.source_snapshot.clickhouse.database).toBe(db);
    expect(manifest.coverage).toMatchObject({ kept_events: ALERTS.length, dropped_events: 0 });
    const paths = manifest.files.map((f: { path: string }) => f.path);
    expect(paths).toEqual([...paths].sort());
    expect(JSON.stringify(manifest)).not.toContain('password');

    const report = await verifyLakeDir(runDir);
    expect(report).toMatchObject({ ok: true, problems: [] });
    expect(report.files_checked).toBe(buckets.length + 2);

    const stored = await duck(`SELECT alert_id, mint, ts_ms FROM read_parquet(${dlit(join(local, 'inputs/alerts.parquet'))})`);
    expect(stored.map((r) => [r.alert_id, r.mint, Number(r.ts_ms)])).toEqual(ALERTS.map((a) => [a.id, a.mint, a.tsMs]));
  });

  it('reads Parquet alerts with ms ints, second ints and a timestamp column alike, storing them byte for byte', async () => {
    const values = ALERTS.map((a) => `(${dlit(a.id)}, ${dlit(a.mint)}, ${a.tsMs}::BIGINT)`).join(', ');
    const variants: Record<string, string> = {
      ms: `SELECT alert_id, mint, ms AS ts FROM (VALUES ${values}) t(alert_id, mint, ms)`,
      seconds: `SELECT alert_id AS id, mint AS token_address, ms // 1000 AS timestamp FROM (VALUES ${values}) t(alert_id, mint, ms)`,
      timestamp: `SELECT alert_id, mint, make_timestamp(ms * 1000) AS ts FROM (VALUES ${values}) t(alert_id, mint, ms)`,
    };
    const want = await coverageRows(reference);
    for (const [name, select] of Object.entries(variants)) {
      const path = join(work, `alerts-${name}.parquet`);
      await duck(`COPY (${select}) TO ${dlit(path)} (FORMAT parquet)`);
      const result = await exportRunSlices(runConfig(db, lake.fresh(`pq-${name}`), path));
      const local = await lake.local(result.run_dir);
      // ALERTS times carry sub-minute parts; the seconds variant floors them the same way.
      expect(await coverageRows(join(local, 'outputs/coverage.parquet')), name).toEqual(want);
      expect(readFileSync(join(local, 'inputs/alerts.parquet')).equals(readFileSync(path)), name).toBe(true);
    }
  });

  it('strict mode drops alerts and their candles, and keeps them in coverage', async () => {
    const result = await exportRunSlices(runConfig(db, lake.fresh('strict'), csvPath, { strict_coverage: true, min_required_pre: 8, target_total: 26 }));
    const local = await lake.local(result.run_dir);
    const expectedCoverage = independentCoverage(allCandles, ALERTS, { minPre: 8, total: 26 });
    const coverage = await coverageRows(join(local, 'outputs/coverage.parquet'));
    expect(coverage).toEqual(expectedCoverage);
    const kept = ALERTS.filter((_, i) => expectedCoverage[i]!.kept);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(ALERTS.length);
    const want = await expectedCandles(db, kept.map((a) => windowOf(a.mint, a.tsMs, 60, PRE, POST)));
    const rows = await sliceRows(local);
    expect(rows.map(({ mint_bucket: _b, interval_s: _i, ...c }) => c)).toEqual(want);
    expect(result.manifest.coverage).toMatchObject({ kept_events: kept.length, dropped_events: ALERTS.length - kept.length, strict: true });
  });

  it('reports monotonic progress ending in done', async () => {
    const events: LakeProgressEvent[] = [];
    await exportRunSlices(runConfig(db, lake.fresh('progress'), csvPath), { onProgress: (e) => events.push(e) });
    await new Promise((r) => setTimeout(r, 50));
    expect(events.length).toBeGreaterThanOrEqual(3);
    const phases = ['loading_alerts', 'exporting', 'finishing', 'sealing', 'done'];
    for (let i = 1; i < events.length; i++) {
      const [a, b] = [events[i - 1]!, events[i]!];
      expect(phases.indexOf(b.phase)).toBeGreaterThanOrEqual(phases.indexOf(a.phase));
      expect(b.mints_done).toBeGreaterThanOrEqual(a.mints_done);
      expect(b.rows).toBeGreaterThanOrEqual(a.rows);
      expect(b.bytes).toBeGreaterThanOrEqual(a.bytes);
    }
    const last = events.at(-1)!;
    expect(last.phase).toBe('done');
    expect(last.mints_total).toBe(new Set(ALERTS.map((a) => a.mint)).size);
    expect(last.mints_done).toBe(last.mints_total);
    expect(last.rows).toBe(allCandles.length);
  });

  it('is byte-deterministic whatever the concurrency', async () => {
    const a = await exportRunSlices(runConfig(db, lake.fresh('det-a'), csvPath, { concurrency: 1 }));
    const b = await exportRunSlices(runConfig(db, lake.fresh('det-b'), csvPath, { concurrency: 4 }));
    const fa = filesUnder(await lake.local(a.run_dir));
    const fb = filesUnder(await lake.local(b.run_dir));
    expect([...fa.keys()]).toEqual([...fb.keys()]);
    for (const [path, bytes] of fa) {
      if (path === 'manifest.json') continue;
      expect(bytes.equals(fb.get(path)!), path).toBe(true);
    }
    const strip = (m: Record<string, unknown>) => {
      const copy = JSON.parse(JSON.stringify(m));
      delete copy.created_at;
      delete copy.seal;
      delete copy.inputs.source_snapshot.clickhouse.as_of;
      return copy;
    };
    expect(strip(a.manifest)).toEqual(strip(b.manifest));
  });

  it('refuses an existing run and replaces it atomically on overwrite', async () => {
    const root = lake.fresh('exists');
    const first = await exportRunSlices(runConfig(db, root, csvPath));
    const err = await rejection(exportRunSlices(runConfig(db, root, csvPath)));
    expect(err.code).toBe('RUN_EXISTS');
    expect(err.message).toContain('overwrite');
    expect((await verifyLakeDir(first.run_dir)).ok).toBe(true);

    const smaller = join(work, 'one-alert.csv');
    writeFileSync(smaller, csvOf([{ id: 'only', mint: MINTS[1]!, ts: String(T0 + 300) }]));
    const second = await exportRunSlices(runConfig(db, root, smaller, { overwrite: true }));
    expect(second.run_dir).toBe(first.run_dir);
    const local = await lake.local(second.run_dir);
    expect((await coverageRows(join(local, 'outputs/coverage.parquet'))).map((c) => c.alert_id)).toEqual(['only']);
    expect((await verifyLakeDir(second.run_dir)).ok).toBe(true);
    expect(runsIn(lake, root)).toEqual(['run_id=run-1']);
    // Nothing of the replaced run is left beside the new one, and no hidden debris either.
    expect(lake.list(second.run_dir).sort()).toEqual(['manifest.json', ...(second.manifest as { files: Array<{ path: string }> }).files.map((f) => f.path)].sort());
    expect(lake.list(`${root}/lake/runs`).filter((p) => p.startsWith('.') && !p.startsWith('.lock-'))).toEqual([]);
  });

  it('rejects bad config and bad alerts with coded errors, before touching the lake', async () => {
    const root = lake.fresh('bad');
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ window: 'pre10' }, 'INVALID_CONFIG', 'pre<N>_post<M>'],
      [{ interval: '0m' }, 'INVALID_CONFIG', 'interval'],
      [{ run_id: '../escape' }, 'INVALID_CONFIG', 'run_id'],
      [{ target_file_mb: -1 }, 'INVALID_CONFIG', 'target_file_mb'],
      [{ target_file_mb: 1.5 }, 'INVALID_CONFIG', 'target_file_mb'],
      [{ compression: 'gzip' }, 'INVALID_CONFIG', 'compression'],
      [{ unknown_field: 1 }, 'INVALID_CONFIG', 'unknown_field'],
      [{ alerts_path: join(work, 'missing.csv') }, 'INVALID_ALERTS', 'missing.csv'],
    ];
    for (const [patch, code, needle] of cases) {
      const err = await rejection(exportRunSlices({ ...runConfig(db, root, csvPath), ...patch } as never));
      expect(err.code, JSON.stringify(patch)).toBe(code);
      expect(err.message, JSON.stringify(patch)).toContain(needle);
    }
    expect(runsIn(lake, root)).toEqual([]);
  });

  it('maps server failures to codes and publishes nothing', async () => {
    const root = lake.fresh('server-errors');
    const base = runConfig(db, root, csvPath);
    const cases: Array<[Record<string, unknown>, string]> = [
      // retries: 0 keeps the old fail-fast; what retrying does is retries.test.ts's subject.
      [{ ...base.clickhouse, port: 1, retries: 0 }, 'CLICKHOUSE_UNREACHABLE'],
      [{ ...base.clickhouse, user: 'tester', password: 'wrong-pass-123' }, 'CLICKHOUSE_AUTH'],
      [{ ...base.clickhouse, table: 'nope' }, 'CLICKHOUSE_SCHEMA'],
    ];
    for (const [clickhouse, code] of cases) {
      const err = await rejection(exportRunSlices({ ...base, clickhouse } as never));
      expect(err.code).toBe(code);
      expect(err.message).not.toContain('wrong-pass-123');
    }
    expect(runsIn(lake, root)).toEqual([]);
  });

  it('honours compression and rolls files by target_file_mb', async () => {
    // One mint with 30,000 candles: its bucket is larger than 1 MiB uncompressed.
    const mint = 'RollMint111111111111111111111111111111111111';
    await chQuery(
      `CREATE TABLE IF NOT EXISTS ${db}.big AS ${db}.ohlcv_candles`,
    );
    await chQuery(`TRUNCATE TABLE ${db}.big`);
    await chQuery(
      `INSERT INTO ${db}.big SELECT ${`'${mint}'`}, 'solana', toDateTime(${T0} + number * 60), 60, number, number, number, number, number, ` +
        `toDateTime(1700000000) FROM system.numbers LIMIT 30000`,
    );
    const alerts = join(work, 'roll.csv');
    writeFileSync(alerts, csvOf([{ id: 'r', mint, ts: String(T0 + 15000 * 60) }]));
    for (const compression of ['zstd', 'snappy', 'none'] as const) {
      const cfg = runConfig(db, lake.fresh(`codec-${compression}`), alerts, { compression, window: 'pre15000_post15000', target_file_mb: 1 });
      const r = await exportRunSlices({ ...cfg, clickhouse: { ...cfg.clickhouse!, table: 'big' } });
      const manifest = r.manifest as { files: Array<{ path: string; bytes: number; rows: number }> };
      const local = await lake.local(r.run_dir);
      const meta = await duck(`SELECT DISTINCT compression FROM parquet_metadata(${dlit(`${local}/slices/**/*.parquet`)})`);
      expect(meta.map((m) => String(m.compression)), compression).toEqual([compression === 'none' ? 'UNCOMPRESSED' : compression.toUpperCase()]);
      expect(r.total_rows).toBe(30000);
      if (compression === 'none') {
        expect(r.total_files).toBeGreaterThan(1);
        expect(manifest.files.some((f) => f.path.endsWith(`mint_bucket=${bucketOf(mint)}/part-0001.parquet`))).toBe(true);
        for (const f of manifest.files) expect(f.bytes).toBeLessThanOrEqual(1 << 20);
      }
      expect((await verifyLakeDir(r.run_dir)).ok).toBe(true);
    }
  });

  it('verify catches a tampered file', async () => {
    const r = await exportRunSlices(runConfig(db, lake.fresh('tamper'), csvPath));
    const victim = (r.manifest as { files: Array<{ path: string }> }).files.at(-1)!.path;
    const bytes = readFileSync(join(await lake.local(r.run_dir), victim));
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    lake.put(r.run_dir, victim, bytes);
    const report = await verifyLakeDir(r.run_dir);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => [p.kind, p.path])).toContainEqual(['hash', victim]);
  });
});
