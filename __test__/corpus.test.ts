import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportCorpus, exportRunSlices, verifyLakeDir, type LakeCorpusExportConfig, type LakeProgressEvent } from '#native';
import { connection } from './support/clickhouse.js';
import { duck, dlit } from './support/duckdb.js';
import { rejection } from './support/errors.js';
import { MINTS, T0, useCandleFixture, expectedCandles, bucketOf, type Candle } from './support/fixture.js';
import { filesUnder, runConfig, tempDir } from './support/lake.js';
import { lakeRoots } from './support/roots.js';

const DAY_MS = 86_400_000;
const FROM = Date.UTC(2021, 0, 1);

function corpusConfig(db: string, root: string, extra: Partial<LakeCorpusExportConfig> = {}): LakeCorpusExportConfig {
  return {
    data_root: root,
    interval: '1m',
    date_from: '2021-01-01',
    date_to: '2021-01-05',
    clickhouse: connection(db, 'ohlcv_candles'),
    ...extra,
  };
}

async function corpusRows(dir: string): Promise<Candle[]> {
  const rows = await duck(
    `SELECT mint, epoch_ms(ts) AS ts_ms, open, high, low, close, volume FROM read_parquet(${dlit(`${dir}/date=*/mint_bucket=*/*.parquet`)}, ` +
      `hive_partitioning = false) ORDER BY mint, ts_ms`,
  );
  return rows.map((r) => ({
    mint: String(r.mint), ts_ms: Number(r.ts_ms), open: Number(r.open), high: Number(r.high), low: Number(r.low),
    close: Number(r.close), volume: Number(r.volume),
  }));
}

describe.each(lakeRoots())('exportCorpus ($kind)', (lake) => {
  let db: string;
  let work: string;
  let expected: Candle[];
  /** One data_root per name, made on first use, shared by the tests that build on each other. */
  const roots = new Map<string, string>();
  const rootOf = (name: string) => {
    if (!roots.has(name)) roots.set(name, lake.fresh(name));
    return roots.get(name)!;
  };
  const corpusOf = (name: string) => `${rootOf(name)}/lake/corpus/ohlcv/interval=1m`;

  const fixture = useCandleFixture('corpus');
  beforeAll(async () => {
    db = fixture.db;
    work = tempDir('lake-corpus');
    expected = await expectedCandles(db, MINTS.map((mint) => ({ mint, anchor: FROM, start: FROM, end: FROM + 4 * DAY_MS })));
  });

  it('writes every candle of three days, one sealed manifest per day', async () => {
    const root = rootOf('full');
    const events: LakeProgressEvent[] = [];
    const r = await exportCorpus(corpusConfig(db, root), { onProgress: (e) => events.push(e) });
    // Progress names each day as it starts (those events are never throttled away) and counts the days sealed.
    expect([...new Set(events.map((e) => e.day).filter(Boolean))]).toEqual(['2021-01-01', '2021-01-02', '2021-01-03', '2021-01-04']);
    expect(events.every((e) => e.days_total === 4 || (e.days_total === 0 && e.day === undefined))).toBe(true);
    expect(events.at(-1)).toMatchObject({ phase: 'done', days_done: 4, days_total: 4 });
    expect(r.days.map((d) => [d.date, d.status, d.sealed])).toEqual([
      ['2021-01-01', 'exported', true], ['2021-01-02', 'exported', true], ['2021-01-03', 'exported', true],
      ['2021-01-04', 'exported', true],
    ]);
    expect(r.corpus_dir).toBe(corpusOf('full'));
    const local = await lake.local(r.corpus_dir);
    expect(await corpusRows(local)).toEqual(expected);
    expect(r.days[3]!.files).toBe(0); // the fixture ends on day three; day four is sealed and empty
    for (const d of r.days) {
      const report = await verifyLakeDir(d.dir);
      expect(report.ok, JSON.stringify(report.problems)).toBe(true);
      expect(d.dir).toBe(`${corpusOf('full')}/date=${d.date}`);
      const dayDir = join(local, `date=${d.date}`);
      const manifest = JSON.parse(readFileSync(join(dayDir, 'manifest.json'), 'utf8'));
      expect(manifest).toMatchObject({ kind: 'corpus_day', date: d.date, interval: '1m', chain: 'solana', selection: { buckets: '00-ff' } });
      const buckets = readdirSync(dayDir).filter((n) => n.startsWith('mint_bucket=')).map((n) => n.slice(12)).sort();
      expect(manifest.outputs.mint_buckets).toEqual(buckets);
    }
    const rows = await duck(`SELECT DISTINCT mint, regexp_extract(filename, 'mint_bucket=([0-9a-f]{2})', 1) AS b FROM read_parquet(${dlit(`${local}/date=*/mint_bucket=*/*.parquet`)}, filename = true)`);
    expect(rows.every((x) => x.b === bucketOf(String(x.mint)))).toBe(true);
  });

  it('skips sealed days on a re-run and redoes a tampered one', async () => {
    const root = rootOf('full');
    const dir = corpusOf('full');
    const before = filesUnder(await lake.local(dir));
    const again = await exportCorpus(corpusConfig(db, root));
    expect(again.days.map((d) => d.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
    expect(again.rows_fetched).toBe(0);
    const victim = [...before.keys()].find((p) => p.startsWith('date=2021-01-02/mint_bucket='))!;
    const bytes = Buffer.from(before.get(victim)!);
    bytes[20]! ^= 0xff;
    // In S3 a re-run reads no bytes: it sees the rewrite by its time (whole seconds) being after the manifest's.
    if (lake.kind === 's3') await new Promise((r) => setTimeout(r, 1100));
    lake.put(dir, victim, bytes);
    const redo = await exportCorpus(corpusConfig(db, root));
    expect(redo.days.map((d) => d.status)).toEqual(['skipped', 'redone', 'skipped', 'skipped']);
    expect(redo.days[1]!.detail).toContain(lake.kind === 's3' ? 'written after the manifest' : 'SHA-256');
    expect((await verifyLakeDir(`${dir}/date=2021-01-02`)).ok).toBe(true);
    const after = filesUnder(await lake.local(dir));
    for (const [path, content] of before) {
      if (path.endsWith('manifest.json') || path.includes('.lock-')) continue;
      expect(after.get(path)?.equals(content), path).toBe(true);
    }
  });

  it('days read together by one query are byte for byte the days read one at a time', async () => {
    // Four days are one query whose rows are parked per day; a one-day export streams its day straight to the files.
    const full = filesUnder(await lake.local(corpusOf('full')));
    const root = rootOf('one-by-one');
    for (let d = 0; d < 4; d++) {
      const day = (k: number) => new Date(FROM + k * DAY_MS).toISOString().slice(0, 10);
      await exportCorpus(corpusConfig(db, root, { date_from: day(d), date_to: day(d + 1) }));
    }
    const single = filesUnder(await lake.local(corpusOf('one-by-one')));
    const data = (m: Map<string, Buffer>) => [...m.keys()].filter((p) => p.endsWith('.parquet')).sort();
    expect(data(single).length).toBeGreaterThan(20);
    expect(data(single)).toEqual(data(full));
    for (const p of data(full)) expect(single.get(p)!.equals(full.get(p)!), p).toBe(true);
  });

  it('a batch read while the one before writes its parked days gives the same days, sealed in order', async () => {
    // Eight days are two queries: 2020-12-27..2021-01-02 (the candles' first two days parked), then 2021-01-03..04,
    // read while the first batch's parked days are still being written.
    const full = filesUnder(await lake.local(corpusOf('full')));
    const r = await exportCorpus(corpusConfig(db, rootOf('two-batches'), { date_from: '2020-12-27' }));
    expect(r.days.map((d) => d.date)).toEqual(['2020-12-27', '2020-12-28', '2020-12-29', '2020-12-30', '2020-12-31', '2021-01-01', '2021-01-02', '2021-01-03', '2021-01-04']);
    expect(r.days.every((d) => d.status === 'exported' && d.sealed)).toBe(true);
    expect(r.days.slice(0, 5).every((d) => d.rows === 0)).toBe(true);
    expect(r.days.reduce((n, d) => n + d.rows, 0)).toBe(expected.length);
    expect(r.days[7]!.rows).toBeGreaterThan(0);
    const both = filesUnder(await lake.local(corpusOf('two-batches')));
    const data = (m: Map<string, Buffer>) => [...m.keys()].filter((p) => p.endsWith('.parquet')).sort();
    expect(data(both).length).toBeGreaterThan(20);
    expect(data(both)).toEqual(data(full));
    for (const p of data(full)) expect(both.get(p)!.equals(full.get(p)!), p).toBe(true);
    for (const d of r.days) expect((await verifyLakeDir(d.dir)).ok, d.date).toBe(true);
  });

  it('two bucket-range shards write the same data files as one full run, then seal each day', async () => {
    const full = filesUnder(await lake.local(corpusOf('full')));
    const root = rootOf('sharded');
    const low = await exportCorpus(corpusConfig(db, root, { buckets: '00-7f' }));
    expect(low.days.every((d) => !d.sealed)).toBe(true);
    const high = await exportCorpus(corpusConfig(db, root, { buckets: '80-ff', concurrency: 1 }));
    expect(high.days.every((d) => d.sealed)).toBe(true);
    const sharded = filesUnder(await lake.local(corpusOf('sharded')));
    const data = (m: Map<string, Buffer>) => [...m.keys()].filter((p) => p.endsWith('.parquet')).sort();
    expect(data(sharded)).toEqual(data(full));
    for (const p of data(full)) expect(sharded.get(p)!.equals(full.get(p)!), p).toBe(true);
    for (const d of high.days) {
      expect((await verifyLakeDir(d.dir)).ok).toBe(true);
      const merged = JSON.parse(sharded.get(`date=${d.date}/manifest.json`)!.toString('utf8'));
      const single = JSON.parse(full.get(`date=${d.date}/manifest.json`)!.toString('utf8'));
      expect(merged.files).toEqual(single.files);
      expect(merged.outputs).toEqual(single.outputs);
      expect(merged.selection).toEqual(single.selection);
    }
    const rerun = await exportCorpus(corpusConfig(db, root, { buckets: '00-7f' }));
    expect(rerun.days.map((d) => d.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
  });

  it('honours mint_filter', async () => {
    const r = await exportCorpus(corpusConfig(db, rootOf('filtered'), { mint_filter: [MINTS[4]!, MINTS[5]!, 'NotThere'] }));
    const rows = await corpusRows(await lake.local(r.corpus_dir));
    expect(rows).toEqual(expected.filter((c) => c.mint === MINTS[4] || c.mint === MINTS[5]));
  });

  it('keeps the days before a failing day', async () => {
    const root = rootOf('edge');
    // 2106-02-07 does not fit in ClickHouse DateTime: the export fails there, after two sealed (empty) days.
    const err = await rejection(exportCorpus(corpusConfig(db, root, { date_from: '2106-02-05', date_to: '2106-02-09' })));
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.message).toContain('2106-02-07');
    const listed = lake.list(corpusOf('edge'));
    expect([...new Set(listed.map((p) => p.split('/')[0]!))].filter((n) => n.startsWith('date=')).sort()).toEqual(['date=2106-02-05', 'date=2106-02-06']);
    expect(listed).toContain('date=2106-02-06/manifest.json');
  });

  it('run slices read from the corpus are byte-identical to those read from ClickHouse', async () => {
    const alerts = join(work, 'alerts.csv');
    const lines = MINTS.map((m, i) => `a${i},${m},${T0 + 4000 + i * 7919}`);
    lines.push(`late,${MINTS[3]},${T0 + 2 * 86_400 + 3 * 3600}`, `none,NoSuchMint1111111111111111111111111111111,${T0 + 4000}`);
    writeFileSync(alerts, ['alert_id,mint,ts', ...lines].join('\n') + '\n');
    const fromCh = await exportRunSlices(runConfig(db, rootOf('ch-run'), alerts, { window: 'pre60_post120' }));
    const { clickhouse: _unused, ...noServer } = runConfig(db, rootOf('full'), alerts, { window: 'pre60_post120' });
    const fromCorpus = await exportRunSlices({ ...noServer, source: 'corpus' });
    const a = filesUnder(await lake.local(fromCh.run_dir));
    const b = filesUnder(await lake.local(fromCorpus.run_dir));
    const data = [...a.keys()].filter((p) => p.startsWith('slices/') || p === 'outputs/coverage.parquet');
    expect(data.length).toBeGreaterThan(5);
    expect([...b.keys()].filter((p) => p.startsWith('slices/') || p === 'outputs/coverage.parquet')).toEqual(data);
    for (const p of data) expect(b.get(p)!.equals(a.get(p)!), p).toBe(true);
    const snapshot = (fromCorpus.manifest as { inputs: { source_snapshot: { corpus: { path: string; days: Array<{ date: string }> } } } })
      .inputs.source_snapshot.corpus;
    expect(snapshot.path).toBe('corpus/ohlcv/interval=1m');
    expect(snapshot.days.map((d) => d.date)).toEqual(['2021-01-01', '2021-01-02', '2021-01-03']);
    expect((await verifyLakeDir(fromCorpus.run_dir)).ok).toBe(true);

    // A window reaching a day the corpus does not have is refused, not silently empty.
    writeFileSync(alerts, `alert_id,mint,ts\nfar,${MINTS[0]},${T0 + 30 * 86_400 + 7200}\n`);
    const err = await rejection(exportRunSlices({ ...noServer, run_id: 'far', source: 'corpus' }));
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.message).toContain('2021-01-31');
  });

  it('validates dates and bucket ranges', async () => {
    const cases: Array<[Partial<LakeCorpusExportConfig>, string]> = [
      [{ date_from: '2021-1-1' }, 'date_from'],
      [{ date_to: '2021-01-01' }, 'date range'],
      [{ buckets: '80-00' }, 'buckets'],
      [{ buckets: 'xyz' }, 'buckets'],
      [{ mint_filter: [] }, 'mint_filter'],
    ];
    for (const [patch, needle] of cases) {
      const err = await rejection(exportCorpus(corpusConfig(db, rootOf('bad'), patch)));
      expect(err.code, needle).toBe('INVALID_CONFIG');
      expect(err.message).toContain(needle);
    }
  });
});
