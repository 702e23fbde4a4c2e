import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { corpusStatus, exportCorpus, exportRunSlices, type LakeCorpusExportConfig } from '#native';
import { chQuery, connection } from './support/clickhouse.js';
import { quantbot } from './support/cli.js';
import { rejection } from './support/errors.js';
import { MINTS, T0, expectedCandles, lit, useCandleFixture } from './support/fixture.js';
import { dayRows, filesUnder, runConfig, tempDir } from './support/lake.js';

const DAY_S = 86_400;
const DAYS = ['2021-01-01', '2021-01-02', '2021-01-03'];

/** What ClickHouse holds for one whole day, every mint, by plain SQL. */
const expectedDay = (db: string, day: number) =>
  expectedCandles(db, MINTS.map((mint) => ({ mint, anchor: 0, start: (T0 + day * DAY_S) * 1000, end: (T0 + (day + 1) * DAY_S) * 1000 })));

describe('a corpus that follows its source', () => {
  let db: string;
  let work: string;
  let root: string;
  let config: LakeCorpusExportConfig;

  const fixture = useCandleFixture('fresh');
  beforeAll(async () => {
    db = fixture.db;
    work = tempDir('lake-fresh');
    root = join(work, 'lake-root');
    // The fixture's candles cover two days; a third day for three mints.
    for (const mint of MINTS.slice(0, 3)) {
      await chQuery(
        `INSERT INTO ${db}.ohlcv_candles SELECT ${lit(mint)}, 'solana', toDateTime(${T0 + 2 * DAY_S} + number * 60), 60, ` +
          `5, 6, 4, 5.5, 10, toDateTime(1700000000) FROM system.numbers LIMIT 600`,
      );
    }
    config = {
      data_root: root,
      interval: '1m',
      date_from: DAYS[0]!,
      date_to: '2021-01-04',
      clickhouse: connection(db, 'ohlcv_candles'),
    };
  });

  it('finds late and corrected candles, redoes exactly the stale days, and refuses stale days to a run that asks', async () => {
    const first = await exportCorpus(config);
    expect(first.days.map((d) => [d.date, d.status, d.reason])).toEqual(DAYS.map((d) => [d, 'exported', 'new']));
    for (const d of first.days) {
      const m = JSON.parse(readFileSync(join(d.dir, 'manifest.json'), 'utf8'));
      expect(m.source_fingerprint).toMatchObject({ method: 'distinct-keys+max-version/v1', version_column: 'ingested_at' });
      expect(m.source_fingerprint.digest).toMatch(/^[0-9a-f]{64}$/);
      const candles = Object.values(m.source_fingerprint.buckets as Record<string, { candles: number }>).reduce((n, b) => n + b.candles, 0);
      expect(candles, 'the fingerprint counts the candles the day holds').toBe(m.outputs.rows);
    }
    expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['fresh', 'fresh', 'fresh']);
    // Sealed days are counted without FINAL under a memory cap; a read-only user, who may send no setting, is
    // answered under FINAL instead: the same numbers either way.
    const readOnly = { ...config, clickhouse: { ...config.clickhouse, user: 'reader' } };
    expect((await corpusStatus(readOnly)).days.map((d) => d.state)).toEqual(['fresh', 'fresh', 'fresh']);

    // A merge changes no fingerprint: it only drops superseded versions.
    await chQuery(`OPTIMIZE TABLE ${db}.ohlcv_candles FINAL`);
    expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['fresh', 'fresh', 'fresh']);

    // Late candles on day 2 (minutes the fixture skipped) and a re-ingested candle with a new close on day 3.
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT ${lit(MINTS[1]!)}, 'solana', toDateTime(${T0 + DAY_S} + number * 60), 60, ` +
        `1, 2, 0.5, 1.5, 7, toDateTime(1800000000) FROM system.numbers WHERE (number + 1440) % 11 = 5 LIMIT 20`,
    );
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles VALUES (${lit(MINTS[2]!)}, 'solana', toDateTime(${T0 + 2 * DAY_S + 120}), 60, 5, 6, 4, 99.25, 10, toDateTime(1800000000))`,
    );
    const status = await corpusStatus(config);
    expect(status.days.map((d) => d.state)).toEqual(['fresh', 'stale', 'stale']);
    expect(status.days[1]!.detail).toMatch(/candles/);
    expect(status.days[2]!.detail).toMatch(/newer versions/);
    expect(status.days[0]!.detail).toBe('');

    // A run from the corpus that asks for freshness is refused, naming the days and the command.
    const alerts = join(work, 'alerts.csv');
    writeFileSync(alerts, `alert_id,mint,ts\na,${MINTS[1]},${T0 + DAY_S + 3600}\nb,${MINTS[2]},${T0 + 2 * DAY_S + 600}\n`);
    const fromCorpus = { ...runConfig(db, root, alerts, { window: 'pre60_post120', run_id: 'from-corpus' }), source: 'corpus' as const };
    const refused = await rejection(exportRunSlices({ ...fromCorpus, require_fresh: true }));
    expect(refused.code).toBe('CORPUS_STALE');
    expect(refused.message).toContain('2021-01-02 (');
    expect(refused.message).toContain('2021-01-03 (');
    expect(refused.message).toContain('quantbot lake export-corpus --interval 1m --date-from 2021-01-02 --date-to 2021-01-04');
    // Without it the run goes ahead and records each day's fingerprint, so the question can be asked later.
    const { clickhouse: _unused, ...noServer } = fromCorpus;
    const unchecked = await exportRunSlices(noServer);
    const daysRead = (unchecked.manifest as { inputs: { source_snapshot: { corpus: { days: Array<{ date: string; fingerprint?: string }> } } } })
      .inputs.source_snapshot.corpus.days;
    const digestOf = (day: string) => JSON.parse(readFileSync(join(first.corpus_dir, `date=${day}`, 'manifest.json'), 'utf8')).source_fingerprint.digest;
    expect(daysRead).toEqual(['2021-01-02', '2021-01-03'].map((date) => expect.objectContaining({ date, fingerprint: digestOf(date) })));

    // The re-run redoes exactly days 2 and 3; day 1's files are not touched.
    const day1 = first.days[0]!.dir;
    const before = new Map([...filesUnder(day1).entries()].map(([p, b]) => [p, { b, mtime: statSync(join(day1, p)).mtimeMs }]));
    const again = await exportCorpus(config);
    expect(again.days.map((d) => [d.status, d.reason])).toEqual([['skipped', 'fresh'], ['redone', 'stale'], ['redone', 'stale']]);
    expect(again.days[1]!.detail).toMatch(/candles/);
    const after = filesUnder(day1);
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [p, { b, mtime }] of before) {
      expect(after.get(p)!.equals(b), p).toBe(true);
      expect(statSync(join(day1, p)).mtimeMs, p).toBe(mtime);
    }
    // The redone days hold the new rows and values.
    expect(await dayRows(again.days[1]!.dir)).toEqual(await expectedDay(db, 1));
    const day3 = await dayRows(again.days[2]!.dir);
    expect(day3).toEqual(await expectedDay(db, 2));
    expect(day3.find((c) => c.mint === MINTS[2] && c.ts_ms === (T0 + 2 * DAY_S + 120) * 1000)?.close).toBe(99.25);
    expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['fresh', 'fresh', 'fresh']);

    // Fresh again: slices from the corpus (checked fresh) are byte for byte the slices from ClickHouse.
    const checked = await exportRunSlices({ ...fromCorpus, run_id: 'checked', require_fresh: true });
    const fromCh = await exportRunSlices(runConfig(db, join(work, 'ch'), alerts, { window: 'pre60_post120', run_id: 'checked' }));
    const a = filesUnder(fromCh.run_dir);
    const b = filesUnder(checked.run_dir);
    const data = [...a.keys()].filter((p) => p.startsWith('slices/') || p === 'outputs/coverage.parquet');
    expect(data.length).toBeGreaterThan(1);
    for (const p of data) expect(b.get(p)?.equals(a.get(p)!), p).toBe(true);
  });

  it('fingerprints every batch of a longer range (the next batch\'s asked for while one streams)', async () => {
    const cfg = { ...config, data_root: join(work, 'long'), date_to: '2021-01-11' };
    const r = await exportCorpus(cfg);
    expect(r.days).toHaveLength(10);
    for (const d of r.days) {
      const m = JSON.parse(readFileSync(join(d.dir, 'manifest.json'), 'utf8'));
      const candles = Object.values(m.source_fingerprint.buckets as Record<string, { candles: number }>).reduce((n, b) => n + b.candles, 0);
      expect(candles, d.date).toBe(m.outputs.rows);
    }
    expect((await corpusStatus(cfg)).days.every((d) => d.state === 'fresh')).toBe(true);
  });

  it('never says fresh without the server: unreachable is unknown, and the disk still speaks', async () => {
    const root2 = join(work, 'unknown');
    const cfg = { ...config, data_root: root2, date_to: '2021-01-03' };
    await exportCorpus(cfg);
    const { dir } = (await exportCorpus({ ...cfg, date_from: '2021-01-02' })).days[0]!;
    const part = [...filesUnder(dir).keys()].find((p) => p.endsWith('.parquet'))!;
    writeFileSync(join(dir, part), 'damaged');
    const down = await corpusStatus({ ...cfg, date_to: '2021-01-04', clickhouse: { ...cfg.clickhouse, port: 1, retries: 0 } });
    expect(down.days.map((d) => d.state)).toEqual(['unknown', 'damaged', 'missing']);
    expect(down.days[0]!.detail).toContain('CLICKHOUSE_UNREACHABLE');
    expect(down.days[1]!.detail).toContain(part);

    // The CLI says the same, in any format.
    const url = new URL(`http://${cfg.clickhouse.host}:${cfg.clickhouse.port}`);
    const env = { CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port, CLICKHOUSE_DATABASE: db };
    const r = quantbot(['lake', 'corpus-status', '--interval', '1m', '--date-from', '2021-01-01', '--date-to', '2021-01-04', '--data-root', root2, '--format', 'csv'], env);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('date,state,detail,dir');
    expect(lines.slice(1).map((l) => l.split(',').slice(0, 2).join(','))).toEqual(['2021-01-01,fresh', '2021-01-02,damaged', '2021-01-03,missing']);
  });
  it('reads the bytes of the days it keeps or rebuilds from: a changed byte there redoes the day whole, as damaged', async () => {
    const cfg = { ...config, data_root: join(work, 'flipped'), date_to: '2021-01-03' };
    const first = await exportCorpus(cfg);
    // One byte changed, the size kept, in day 1 (fresh: kept) and in the bucket of the mint whose candle on day 2
    // is corrected below (stale: its bucket would be rebuilt from that file).
    const flip = (dir: string, part: string) => {
      const bytes = readFileSync(join(dir, part));
      bytes[bytes.length >> 1]! ^= 0xff;
      writeFileSync(join(dir, part), bytes);
    };
    const bucket = createHash('sha1').update(MINTS[0]!).digest('hex').slice(0, 2);
    const parts = first.days.map((d) => [...filesUnder(d.dir).keys()].find((p) => p.startsWith(`mint_bucket=${bucket}/`))!);
    first.days.forEach((d, i) => flip(d.dir, parts[i]!));
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT token_address, chain, timestamp, interval_seconds, open, high, low, close + 1, volume, ` +
        `toDateTime(1900000000) FROM ${db}.ohlcv_candles FINAL WHERE token_address = ${lit(MINTS[0]!)} AND timestamp >= toDateTime(${T0 + DAY_S}) LIMIT 1`,
    );
    const again = await exportCorpus(cfg);
    expect(again.days.map((d) => [d.status, d.reason, d.refreshed])).toEqual([
      ['redone', 'damaged', undefined],
      ['redone', 'damaged', undefined],
    ]);
    again.days.forEach((d, i) => expect(d.detail).toBe(`hash ${parts[i]}: SHA-256 differs from the manifest`));
    for (const [i, d] of again.days.entries()) expect(await dayRows(d.dir), d.date).toEqual(await expectedDay(db, i));
    expect((await corpusStatus(cfg)).days.map((d) => d.state)).toEqual(['fresh', 'fresh']);
  });
});

describe('freshness of a table without FINAL (plain MergeTree, duplicates kept)', () => {
  const fixture = useCandleFixture('freshmt', 'MergeTree');

  it('counts distinct candles, so duplicates do not look like changes and late candles do', async () => {
    const config: LakeCorpusExportConfig = {
      data_root: join(tempDir('lake-fresh-mt'), 'root'),
      interval: '1m',
      date_from: DAYS[0]!,
      date_to: DAYS[2]!,
      clickhouse: connection(fixture.db, 'ohlcv_candles'),
    };
    const first = await exportCorpus(config);
    for (const d of first.days) {
      const m = JSON.parse(readFileSync(join(d.dir, 'manifest.json'), 'utf8'));
      const candles = Object.values(m.source_fingerprint.buckets as Record<string, { candles: number }>).reduce((n, b) => n + b.candles, 0);
      expect(candles, 'the re-ingested duplicates are one candle each').toBe(m.outputs.rows);
    }
    expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['fresh', 'fresh']);
    await chQuery(
      `INSERT INTO ${fixture.db}.ohlcv_candles VALUES (${lit(MINTS[0]!)}, 'solana', toDateTime(${T0 + DAY_S + 6 * 60}), 60, 1, 1, 1, 1, 1, toDateTime(1800000000))`,
    );
    const status = await corpusStatus(config);
    expect(status.days.map((d) => d.state)).toEqual(['fresh', 'stale']);
    expect(status.days[1]!.detail).toMatch(/→/);
  });
});
