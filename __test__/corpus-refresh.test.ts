import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { corpusStatus, exportCorpus, type LakeCorpusExportConfig, verifyLakeDir } from '#native';
import { chQuery, clickhouseUrl, connection } from './support/clickhouse.js';
import { quantbot } from './support/cli.js';
import { startFaultProxy } from './support/fault-proxy.js';
import { MINTS, T0, bucketOf, expectedCandles, lit, useCandleFixture } from './support/fixture.js';
import { dayRows, filesUnder, tempDir } from './support/lake.js';
import { awsEnv, s3Root, s3Suite } from './support/roots.js';
import { startS3FaultProxy } from './support/s3-fault-proxy.js';

const DAY_S = 86_400;
const DAY1 = T0 + DAY_S;
const NEW_MINT = 'NewMint999pump';

/** The bucket directory of a day-relative file path. */
const bucketDir = (p: string) => p.split('/')[0]!;

/** Asserts two day directories (read with filesUnder) hold the same Parquet files, byte for byte. */
function expectSameDataFiles(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  const data = (m: Map<string, Buffer>) => [...m.keys()].filter((p) => p.endsWith('.parquet'));
  expect(data(b)).toEqual(data(a));
  expect(data(a).length).toBeGreaterThan(0);
  for (const p of data(a)) expect(b.get(p)!.equals(a.get(p)!), p).toBe(true);
}

/** Waits until ClickHouse has applied every mutation of `db` (18.16 runs them in the background). */
async function mutationsDone(db: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const left = await chQuery(`SELECT count() FROM system.mutations WHERE database = ${lit(db)} AND is_done = 0`);
    if (left.trim() === '0') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`mutations of ${db} did not finish`);
}

describe('a stale corpus day refreshed in part', () => {
  const fixture = useCandleFixture('refresh');
  let config: LakeCorpusExportConfig;
  let work: string;

  beforeAll(() => {
    work = tempDir('lake-refresh');
    config = {
      data_root: join(work, 'lake'),
      interval: '1m',
      date_from: '2021-01-02',
      date_to: '2021-01-03',
      clickhouse: connection(fixture.db, 'ohlcv_candles'),
    };
  });

  it('fetches only the changed mints, keeps unchanged buckets, and equals an export from scratch byte for byte', async () => {
    const db = fixture.db;
    const first = await exportCorpus(config);
    expect(first.days.map((d) => [d.status, d.refreshed])).toEqual([['exported', undefined]]);
    const dir = first.days[0]!.dir;
    const inode = (p: string) => statSync(join(dir, p)).ino;
    const before = new Map([...filesUnder(dir).keys()].map((p) => [p, inode(p)]));

    // Late candles (the minutes the fixture skipped) for one mint, a corrected close for another, one mint gone
    // from the day, one new.
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT ${lit(MINTS[3]!)}, 'solana', toDateTime(${DAY1} + number * 60), 60, ` +
        `1, 2, 0.5, 1.5, 7, toDateTime(1800000000) FROM system.numbers WHERE (number + 1440) % 11 = 5 LIMIT 1440`,
    );
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles VALUES (${lit(MINTS[7]!)}, 'solana', toDateTime(${DAY1 + 600}), 60, 5, 6, 4, 99.25, 10, toDateTime(1800000000))`,
    );
    await chQuery(
      `ALTER TABLE ${db}.ohlcv_candles DELETE WHERE token_address = ${lit(MINTS[12]!)} AND timestamp >= toDateTime(${DAY1})`,
    );
    await mutationsDone(db);
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT ${lit(NEW_MINT)}, 'solana', toDateTime(${DAY1} + number * 60), 60, ` +
        `3, 4, 2, 3.5, 1, toDateTime(1800000000) FROM system.numbers LIMIT 100`,
    );
    expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['stale']);

    const again = await exportCorpus(config);
    const day = again.days[0]!;
    expect([day.status, day.reason]).toEqual(['redone', 'stale']);
    expect(day.refreshed, 'refreshed in part').toBeDefined();
    const changedMints = [MINTS[3]!, MINTS[7]!, NEW_MINT];
    // The gone mint is not fetched: its bucket is rebuilt from the day's own files without it.
    expect(day.refreshed!.mints).toBe(changedMints.length);
    const changed = new Set([...changedMints, MINTS[12]!].map((m) => `mint_bucket=${bucketOf(m)}`));
    expect(day.refreshed!.buckets).toBe(changed.size);
    expect(again.rows_fetched, 'only the changed mints were read').toBeLessThan(first.rows_fetched / 4);

    // Unchanged buckets: the very same files (hard links), not rewritten. Changed ones: new files.
    const after = [...filesUnder(dir).keys()];
    const kept = [...before.keys()].filter((p) => p.endsWith('.parquet') && !changed.has(bucketDir(p)));
    expect(day.refreshed!.files_kept).toBe(kept.length);
    expect(kept.length).toBeGreaterThan(5);
    for (const p of kept) expect(inode(p), p).toBe(before.get(p));
    for (const p of after.filter((p) => changed.has(bucketDir(p)))) expect(inode(p), p).not.toBe(before.get(p));
    // What a reader sees is what ClickHouse holds now...
    const rows = await dayRows(dir);
    expect(rows).toEqual(
      await expectedCandles(db, [...MINTS, NEW_MINT].map((mint) => ({ mint, anchor: 0, start: DAY1 * 1000, end: (DAY1 + DAY_S) * 1000 }))),
    );
    expect(rows.some((r) => r.mint === MINTS[12])).toBe(false);
    expect(rows.filter((r) => r.mint === NEW_MINT)).toHaveLength(100);
    // ...and byte for byte what an export from scratch writes, fingerprint included.
    const scratch = await exportCorpus({ ...config, data_root: join(work, 'scratch') });
    const a = filesUnder(scratch.days[0]!.dir);
    const b = filesUnder(dir);
    expectSameDataFiles(a, b);
    const manifest = (d: string) => JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
    // The data parts each listed may differ (background merges in between): not part of the fingerprint's digest.
    const print = (d: string) => ({ ...manifest(d).source_fingerprint, parts: undefined });
    expect(print(dir)).toEqual(print(scratch.days[0]!.dir));
    expect(manifest(dir).files).toEqual(manifest(scratch.days[0]!.dir).files);
    expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['fresh']);
  });

  it('exports the day whole when most of it changed (the indexer catching up), asking the server only the survey more than an export from scratch', async () => {
    const db = fixture.db;
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT token_address, chain, timestamp, interval_seconds, open, high, low, close + 1, volume, ` +
        `toDateTime(1900000000) FROM ${db}.ohlcv_candles WHERE chain = 'solana' AND interval_seconds = 60 ` +
        `AND timestamp >= toDateTime(${DAY1}) AND timestamp < toDateTime(${DAY1 + DAY_S}) AND token_address != ${lit(MINTS[0]!)}`,
    );
    // The requests each export sends, counted by a proxy that breaks nothing. The export records the fingerprint
    // of the rows it reads, so the stale day costs an export from scratch plus the survey that found it stale,
    // and nothing more: the data parts listed, and either the day's fingerprint query or (the new rows being a
    // minority of the table's) a scan of the new parts, the parts listed again and the prints of their mints.
    const counted = async (root: string) => {
      const proxy = await startFaultProxy(clickhouseUrl(), { seed: 1 });
      try {
        const r = await exportCorpus({ ...config, data_root: root, clickhouse: connection(db, 'ohlcv_candles', { port: proxy.port }) });
        return { r, requests: proxy.stats.requests };
      } finally {
        await proxy.close();
      }
    };
    const { r, requests } = await counted(config.data_root);
    expect([r.days[0]!.status, r.days[0]!.reason, r.days[0]!.refreshed]).toEqual(['redone', 'stale', undefined]);
    // Found by a scan of the new data part (most mints have new rows, so no fingerprint of the day is asked) or,
    // if a background merge took that part into old ones first, by the day's fingerprint query.
    expect(r.days[0]!.detail).toMatch(/^(new rows for \d+ of its \d+ mints|\d+ buckets: newer versions)$/);
    expect(await dayRows(r.days[0]!.dir)).toEqual(
      await expectedCandles(db, [...MINTS, NEW_MINT].map((mint) => ({ mint, anchor: 0, start: DAY1 * 1000, end: (DAY1 + DAY_S) * 1000 }))),
    );
    const scratch = await counted(join(work, 'scratch-catch-up'));
    expect(requests - scratch.requests).toBeGreaterThanOrEqual(1);
    expect(requests - scratch.requests).toBeLessThanOrEqual(4);
  });
});

/** One query user `logged` sent about `db`'s candles since `sinceS`, and the rows the server read for it. */
interface Sent {
  query: string;
  read_rows: number;
}

async function sentSince(db: string, sinceS: number): Promise<Sent[]> {
  await chQuery('SYSTEM FLUSH LOGS');
  const text = await chQuery(
    `SELECT query, read_rows FROM system.query_log WHERE type = 2 AND user = 'logged' AND event_time >= toDateTime(${sinceS}) ` +
      `AND position(query, ${lit(db)}) > 0 AND position(query, 'FROM system.') = 0 FORMAT JSONEachRow`,
  );
  return text.trim().split('\n').filter(Boolean).map((l) => {
    const r = JSON.parse(l) as { query: string; read_rows: string | number };
    return { query: r.query, read_rows: Number(r.read_rows) };
  });
}

/** A second boundary for system.query_log (its times are whole seconds). */
async function nextSecond(): Promise<number> {
  await new Promise((r) => setTimeout(r, 1100));
  return Math.floor(Date.now() / 1000);
}

describe('a re-run asks the server only about the data parts made since a day was read', () => {
  const fixture = useCandleFixture('refreshparts', 'ReplacingMergeTree(ingested_at) PARTITION BY toDate(timestamp)');

  it('finds an unchanged day fresh without reading a row, and refreshes a changed one from its new parts only', async () => {
    const db = fixture.db;
    const work = tempDir('lake-refresh-parts');
    const config: LakeCorpusExportConfig = {
      data_root: join(work, 'lake'), interval: '1m', date_from: '2021-01-02', date_to: '2021-01-03',
      clickhouse: connection(db, 'ohlcv_candles', { user: 'logged' }),
    };
    const first = await exportCorpus(config);
    const dir = first.days[0]!.dir;
    const manifest = () => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const sealedParts = manifest().source_fingerprint.parts as { max_block: number; names: string[] };
    expect(sealedParts.names.length).toBeGreaterThan(0);
    // Partitioned by day: only the day's own partition is recorded.
    for (const n of sealedParts.names) expect(n.startsWith('20210102_'), n).toBe(true);

    // A late candle on the other day, then the day's parts merged into one: nothing of the day to read.
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles VALUES (${lit(MINTS[1]!)}, 'solana', toDateTime(${T0 + 300}), 60, 5, 6, 4, 5.5, 10, toDateTime(1800000000))`,
    );
    await chQuery(`OPTIMIZE TABLE ${db}.ohlcv_candles PARTITION '2021-01-02' FINAL`);
    const merged = await chQuery(
      `SELECT name FROM system.parts WHERE database = ${lit(db)} AND table = 'ohlcv_candles' AND active AND partition_id = '20210102'`,
    );
    expect(merged.trim().split('\n')).not.toEqual(sealedParts.names);
    let since = await nextSecond();
    const quiet = await exportCorpus(config);
    expect([quiet.days[0]!.status, quiet.days[0]!.reason]).toEqual(['skipped', 'fresh']);
    expect(await sentSince(db, since), 'no query read the table').toEqual([]);

    // Late candles for one mint of the day and a new mint: only their part is scanned, only they are asked about.
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT ${lit(MINTS[3]!)}, 'solana', toDateTime(${DAY1} + number * 60), 60, ` +
        `1, 2, 0.5, 1.5, 7, toDateTime(1800000000) FROM system.numbers WHERE (number + 1440) % 11 = 5 LIMIT 1440`,
    );
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT ${lit(NEW_MINT)}, 'solana', toDateTime(${DAY1} + number * 60), 60, ` +
        `3, 4, 2, 3.5, 1, toDateTime(1800000000) FROM system.numbers LIMIT 100`,
    );
    since = await nextSecond();
    const again = await exportCorpus(config);
    const day = again.days[0]!;
    expect([day.status, day.reason]).toEqual(['redone', 'stale']);
    expect(day.refreshed).toMatchObject({ mints: 2 });
    expect(day.detail).toMatch(/: \d+ → \d+ candles, newer versions$/);
    const sent = await sentSince(db, since);
    const scans = sent.filter((q) => q.query.includes('_part IN'));
    expect(scans.length).toBe(1);
    expect(scans[0]!.read_rows, 'the new parts only').toBeLessThanOrEqual(131 + 100);
    // The fetch of those mints gives their prints: no fingerprint query at all.
    expect(sent.filter((q) => q.query.includes('cityHash64'))).toEqual([]);
    // The result: what an export from scratch writes, with the fingerprint the whole-day query gives.
    const scratch = await exportCorpus({ ...config, data_root: join(work, 'scratch') });
    expectSameDataFiles(filesUnder(scratch.days[0]!.dir), filesUnder(dir));
    const print = (d: string) => ({ ...JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')).source_fingerprint, parts: undefined });
    expect(print(dir)).toEqual(print(scratch.days[0]!.dir));
    expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['fresh']);

    // Where the server fingerprints (a version column the rows cannot print; a debug-build switch here), the
    // mints of the new parts are asked for their prints, and only they.
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles VALUES (${lit(MINTS[5]!)}, 'solana', toDateTime(${DAY1 + 900}), 60, 5, 6, 4, 8.5, 10, toDateTime(1800000100))`,
    );
    since = await nextSecond();
    const url = clickhouseUrl();
    const cli = quantbot(
      ['lake', 'export-corpus', '--interval', '1m', '--date-from', '2021-01-02', '--date-to', '2021-01-03', '--data-root', config.data_root, '--format', 'json'],
      {
        CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port, CLICKHOUSE_DATABASE: db, CLICKHOUSE_USER: 'logged',
        QUANTBOT_LAKE_TEST_SERVER_FINGERPRINTS: '1',
      },
    );
    expect(cli.code, cli.stderr).toBe(0);
    const served = (JSON.parse(cli.stdout) as { days: Array<{ status: string; refreshed?: { mints: number } }> }).days[0]!;
    expect([served.status, served.refreshed?.mints]).toEqual(['redone', 1]);
    const asked = (await sentSince(db, since)).filter((q) => q.query.includes('cityHash64'));
    expect(asked.length).toBeGreaterThan(0);
    for (const q of asked) expect(q.query, 'no fingerprint of the whole day').toContain('token_address IN');
    const scratch2 = await exportCorpus({ ...config, data_root: join(work, 'scratch2') });
    expectSameDataFiles(filesUnder(scratch2.days[0]!.dir), filesUnder(dir));
    expect(print(dir)).toEqual(print(scratch2.days[0]!.dir));
    expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['fresh']);
  });
});

describe('a sharded corpus day refreshed in part', () => {
  const fixture = useCandleFixture('refreshshard');

  it('each shard rebuilds only its changed buckets, and the day the shards seal equals an export from scratch', async () => {
    const db = fixture.db;
    const work = tempDir('lake-refresh-shard');
    const config: LakeCorpusExportConfig = {
      data_root: join(work, 'lake'), interval: '1m', date_from: '2021-01-02', date_to: '2021-01-03',
      clickhouse: connection(db, 'ohlcv_candles'),
    };
    for (const shard of ['0/2', '1/2']) await exportCorpus({ ...config, shard });
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles VALUES (${lit(MINTS[5]!)}, 'solana', toDateTime(${DAY1 + 660}), 60, 5, 6, 4, 42.5, 10, toDateTime(1800000000))`,
    );
    const inShard = parseInt(bucketOf(MINTS[5]!), 16) < 128 ? '0/2' : '1/2';
    const other = inShard === '0/2' ? '1/2' : '0/2';
    const quiet = await exportCorpus({ ...config, shard: other });
    expect([quiet.days[0]!.status, quiet.days[0]!.reason]).toEqual(['skipped', 'fresh']);
    const busy = await exportCorpus({ ...config, shard: inShard });
    expect([busy.days[0]!.status, busy.days[0]!.reason]).toEqual(['redone', 'stale']);
    expect(busy.days[0]!.refreshed).toMatchObject({ buckets: 1, mints: 1 });
    expect(busy.days[0]!.sealed).toBe(true);
    const dir = busy.days[0]!.dir;
    expect((await verifyLakeDir(dir)).ok).toBe(true);
    const rows = await dayRows(dir);
    expect(rows.find((r) => r.mint === MINTS[5] && r.ts_ms === (DAY1 + 660) * 1000)?.close).toBe(42.5);
    const scratch = await exportCorpus({ ...config, data_root: join(work, 'scratch') });
    const a = filesUnder(scratch.days[0]!.dir);
    const b = filesUnder(dir);
    expectSameDataFiles(a, b);
    const manifest = (d: string) => JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
    expect(manifest(dir).source_fingerprint.digest).toBe(manifest(scratch.days[0]!.dir).source_fingerprint.digest);
  });
});

describe('a refresh that dies before its publish', () => {
  const fixture = useCandleFixture('refreshcrash');

  it('leaves the sealed day exactly as it was, and the next run refreshes it (copying where there are no hard links)', async () => {
    const db = fixture.db;
    const root = join(tempDir('lake-refresh-crash'), 'lake');
    const url = clickhouseUrl();
    const env = { CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port, CLICKHOUSE_DATABASE: db };
    const args = ['lake', 'export-corpus', '--interval', '1m', '--date-from', '2021-01-02', '--date-to', '2021-01-03', '--data-root', root];
    const first = quantbot([...args, '--format', 'json'], env);
    expect(first.code, first.stderr).toBe(0);
    const dir = (JSON.parse(first.stdout) as { days: Array<{ dir: string }> }).days[0]!.dir;
    const before = filesUnder(dir);
    const inodes = new Map([...before.keys()].map((p) => [p, statSync(join(dir, p)).ino]));
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles VALUES (${lit(MINTS[9]!)}, 'solana', toDateTime(${DAY1 + 720}), 60, 5, 6, 4, 7.75, 10, toDateTime(1800000000))`,
    );
    const crashed = quantbot(args, { ...env, QUANTBOT_LAKE_FAILPOINT: 'corpus.before_publish:abort' });
    expect(crashed.code).not.toBe(0);
    const after = filesUnder(dir);
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [p, b] of before) expect(after.get(p)!.equals(b), p).toBe(true);
    expect((await verifyLakeDir(dir)).ok).toBe(true);
    // On a file system without hard links the unchanged files are copied (and flushed): the same day results.
    const again = quantbot([...args, '--format', 'csv'], { ...env, QUANTBOT_LAKE_FAILPOINT: 'hard_link:off' });
    expect(again.code, again.stderr).toBe(0);
    const [header, row] = again.stdout.trim().split('\n');
    expect(header!.split(',').slice(0, 4)).toEqual(['date', 'status', 'reason', 'refreshed']);
    expect(row).toMatch(/^2021-01-02,redone,stale,"1 buckets, 1 mints, \d+ files kept",true,/);
    expect((await dayRows(dir)).find((r) => r.mint === MINTS[9] && r.ts_ms === (DAY1 + 720) * 1000)?.close).toBe(7.75);
    expect((await verifyLakeDir(dir)).ok).toBe(true);
    const kept = [...before.keys()].filter((p) => p.endsWith('.parquet') && bucketDir(p) !== `mint_bucket=${bucketOf(MINTS[9]!)}`);
    expect(kept.length).toBeGreaterThan(5);
    const now = filesUnder(dir);
    for (const p of kept) {
      expect(now.get(p)!.equals(before.get(p)!), p).toBe(true);
      expect(statSync(join(dir, p)).ino, `${p} is a copy`).not.toBe(inodes.get(p));
    }
  });
});

describe.runIf(s3Suite())('a stale corpus day in an object store refreshed in part', () => {
  const fixture = useCandleFixture('s3refresh');
  const s3 = s3Root();

  it('uploads only the changed buckets\' objects and the manifest; the day verifies and equals an export from scratch', async () => {
    const db = fixture.db;
    // The proxy only watches: every write and delete the exporter sends.
    const writes: string[] = [];
    const proxy = await startS3FaultProxy(awsEnv().AWS_ENDPOINT_URL!, {
      seed: 1,
      refuse: ({ method, url }) => {
        if (method === 'PUT' || method === 'DELETE' || method === 'POST') writes.push(`${method} ${url.split('?')[0]!.replace(/^.*\/date=2021-01-02\//, '')}`);
        return undefined;
      },
    });
    try {
      const root = s3.fresh('refresh');
      const config: LakeCorpusExportConfig = {
        data_root: root, interval: '1m', date_from: '2021-01-02', date_to: '2021-01-03',
        clickhouse: connection(db, 'ohlcv_candles'), object_store: { endpoint: proxy.url },
      };
      const first = await exportCorpus(config);
      const dayUrl = first.days[0]!.dir;
      const objectsBefore = s3.list(dayUrl).filter((p) => p.endsWith('.parquet'));
      await chQuery(
        `INSERT INTO ${db}.ohlcv_candles SELECT ${lit(MINTS[3]!)}, 'solana', toDateTime(${DAY1} + number * 60), 60, ` +
          `1, 2, 0.5, 1.5, 7, toDateTime(1800000000) FROM system.numbers WHERE (number + 1440) % 11 = 5 LIMIT 1440`,
      );
      writes.length = 0;
      const again = await exportCorpus(config);
      expect(again.days[0]!.refreshed).toEqual({ buckets: 1, mints: 1, files_kept: objectsBefore.length - 1 });
      const changed = `mint_bucket=${bucketOf(MINTS[3]!)}/`;
      const dataWrites = writes.filter((w) => w.includes('.parquet'));
      expect(dataWrites.length).toBeGreaterThan(0);
      expect(dataWrites.every((w) => w.split(' ')[1]!.startsWith(changed)), dataWrites.join('\n')).toBe(true);
      expect(writes.some((w) => w === 'PUT manifest.json')).toBe(true);
      expect((await verifyLakeDir(dayUrl)).ok).toBe(true);
      // Byte for byte what an export from scratch (on disk) writes.
      const scratch = await exportCorpus({ ...config, data_root: join(tempDir('lake-s3refresh'), 'scratch'), object_store: undefined });
      const a = filesUnder(scratch.days[0]!.dir);
      const b = filesUnder(await s3.local(dayUrl));
      expectSameDataFiles(a, b);
      expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['fresh']);
    } finally {
      await proxy.close();
    }
  });
});
