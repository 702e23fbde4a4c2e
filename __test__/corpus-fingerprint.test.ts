import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { corpusStatus, exportCorpus, type LakeCorpusExportConfig } from '#native';
import { chQuery, clickhouseUrl, connection } from './support/clickhouse.js';
import { quantbot } from './support/cli.js';
import { MINTS, T0, lit, useCandleFixture } from './support/fixture.js';
import { tempDir } from './support/lake.js';

const DAY_S = 86_400;
const COLUMNS =
  'token_address String, chain String, timestamp DateTime, interval_seconds UInt32, ' +
  'open Float64, high Float64, low Float64, close Float64, volume Float64';
const KEY = 'ORDER BY (token_address, chain, timestamp, interval_seconds)';

/** Tables holding the fixture's rows, each with a version column (or engine) that the fingerprint must follow. */
const TABLES: Record<string, { ddl: string; select: string }> = {
  // The fixture itself: ReplacingMergeTree(ingested_at), a plain DateTime printed in the server's zone.
  ohlcv_candles: { ddl: '', select: '' },
  // A version column with its own zone: the largest versions must print as the server prints them there.
  candles_kolkata: {
    ddl: `(${COLUMNS}, ingested_at DateTime('Asia/Kolkata')) ENGINE = ReplacingMergeTree(ingested_at) ${KEY}`,
    select: '*',
  },
  // No FINAL: duplicates stay, candles are distinct times, the largest version is over every row.
  candles_mergetree: {
    ddl: `(${COLUMNS}, ingested_at DateTime) ENGINE = MergeTree ${KEY}`,
    select: '*',
  },
  // No version column: every mint's version is the empty string.
  candles_unversioned: {
    ddl: `(${COLUMNS}) ENGINE = ReplacingMergeTree ${KEY}`,
    select: 'token_address, chain, timestamp, interval_seconds, open, high, low, close, volume',
  },
};

/** The source fingerprint of each day manifest of an export. */
const fingerprints = (days: { dir: string }[]) =>
  days.map((d) => JSON.parse(readFileSync(join(d.dir, 'manifest.json'), 'utf8')).source_fingerprint);

/** Fingerprint queries (`cityHash64` over `table`) that user `logged` sent to `db`. */
async function fingerprintQueries(db: string, table: string): Promise<number> {
  await chQuery('SYSTEM FLUSH LOGS');
  const n = await chQuery(
    `SELECT count() FROM system.query_log WHERE type = 2 AND user = 'logged' ` +
      `AND position(query, 'cityHash64') > 0 AND position(query, ${lit(db)}) > 0 AND position(query, ${lit(table)}) > 0`,
  );
  return Number(n.trim());
}

describe('fingerprints made from the rows an export reads', () => {
  const fixture = useCandleFixture('rowprint');

  beforeAll(async () => {
    const db = fixture.db;
    for (const [name, t] of Object.entries(TABLES)) {
      if (t.ddl) {
        await chQuery(`CREATE TABLE ${db}.${name} ${t.ddl}`);
        await chQuery(`INSERT INTO ${db}.${name} SELECT ${t.select} FROM ${db}.ohlcv_candles`);
      }
      // A late candle and a re-ingested one in a part of their own, on both days.
      for (const day of [0, 1]) {
        const versioned = name === 'candles_unversioned' ? '' : ', toDateTime(1800000000)';
        await chQuery(
          `INSERT INTO ${db}.${name} VALUES (${lit(MINTS[2]!)}, 'solana', toDateTime(${T0 + day * DAY_S + 5 * 60}), 60, 1, 2, 0.5, 1.5, 9${versioned}), ` +
            `(${lit(MINTS[3]!)}, 'solana', toDateTime(${T0 + day * DAY_S + 60}), 60, 3, 4, 2, 3.5, 9${versioned})`,
        );
      }
    }
  });

  it.each(Object.keys(TABLES))(
    '%s: each day records exactly what the fingerprint query answers, and no fingerprint query runs',
    async (table) => {
      const db = fixture.db;
      const work = tempDir(`lake-rowprint-${table}`);
      const url = clickhouseUrl();
      // The server's fingerprints (a debug-build switch), by the CLI as user `logged`.
      const served = quantbot(
        ['lake', 'export-corpus', '--interval', '1m', '--date-from', '2021-01-01', '--date-to', '2021-01-03',
          '--data-root', join(work, 'served'), '--table', table, '--format', 'json'],
        {
          CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port, CLICKHOUSE_DATABASE: db, CLICKHOUSE_USER: 'logged',
          QUANTBOT_LAKE_TEST_SERVER_FINGERPRINTS: '1',
        },
      );
      expect(served.code, served.stderr).toBe(0);
      const asked = await fingerprintQueries(db, table);
      expect(asked, 'the query log sees the server-side fingerprint queries').toBeGreaterThan(0);

      const config: LakeCorpusExportConfig = {
        data_root: join(work, 'rows'),
        interval: '1m',
        date_from: '2021-01-01',
        date_to: '2021-01-03',
        clickhouse: connection(db, table, { user: 'logged' }),
      };
      // Two days in one query (the second parked), then each day alone.
      const together = await exportCorpus(config);
      const alone = [
        ...(await exportCorpus({ ...config, data_root: join(work, 'alone'), date_to: '2021-01-02' })).days,
        ...(await exportCorpus({ ...config, data_root: join(work, 'alone'), date_from: '2021-01-02' })).days,
      ];
      expect(await fingerprintQueries(db, table), 'exports of new days ask for no fingerprint').toBe(asked);

      const want = fingerprints(JSON.parse(served.stdout).days);
      expect(want).toHaveLength(2);
      for (const f of want) expect(Object.keys(f.buckets).length).toBeGreaterThan(3);
      expect(fingerprints(together.days)).toEqual(want);
      // The re-ingested rows' version as toString prints it in the column's zone (else the server's), by JavaScript.
      if (table !== 'candles_unversioned') {
        const zone = table === 'candles_kolkata' ? 'Asia/Kolkata' : (await chQuery('SELECT timezone()')).trim();
        const printed = new Date(1_800_000_000_000).toLocaleString('sv-SE', { timeZone: zone });
        const versions = want.flatMap((f: { buckets: Record<string, { max_version: string }> }) => Object.values(f.buckets).map((b) => b.max_version));
        expect(versions).toContain(printed);
      }
      expect(fingerprints(alone)).toEqual(want);
      // And the checks that read the server again agree (sealed days are counted without FINAL where possible).
      expect((await corpusStatus(config)).days.map((d) => d.state)).toEqual(['fresh', 'fresh']);
    },
  );
});
