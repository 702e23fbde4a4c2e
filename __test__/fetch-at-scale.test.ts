/**
 * Fetching at scale against the real server: any number of alerts within the server's default query limits, and
 * a server that breaks the key order it was trusted to send, which must never change a byte of the output.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportRunSlices } from '#native';
import { quantbot } from './support/cli.js';
import { chQuery, clickhouseUrl, freshDatabase } from './support/clickhouse.js';
import { MINTS, T0, useCandleFixture } from './support/fixture.js';
import { coverageRows, filesUnder, runConfig, sliceRows, tempDir } from './support/lake.js';

describe('fetch at scale', () => {
  let db: string;
  let work: string;

  const fixture = useCandleFixture('scale');
  beforeAll(async () => {
    db = fixture.db;
    work = tempDir('lake-scale');
  });

  it('exports 50,000 alerts on distinct mints with the default window from a server with default limits', async () => {
    // The server's query limits are its defaults (max_query_size 256 KiB, max_ast_elements 50,000): one query for
    // all these mints would pass both.
    const limits = await chQuery(
      `SELECT name, value, changed FROM system.settings WHERE name IN ('max_query_size', 'max_ast_elements') ORDER BY name FORMAT TSV`,
    );
    expect(limits.trim().split('\n')).toEqual(['max_ast_elements\t50000\t0', 'max_query_size\t262144\t0']);
    const alerts = join(work, 'fifty-thousand.csv');
    const lines = ['alert_id,mint,ts'];
    for (let i = 0; i < 50_000; i++) {
      lines.push(`x${i},${String(i).padStart(8, '0')}AbCdEfGhJkMnPqRsTuVwXyZ123456789ab,${T0 + 100 * 60}`);
    }
    for (const [k, mint] of MINTS.slice(0, 4).entries()) lines.push(`f${k},${mint},${T0 + 100 * 60}`);
    writeFileSync(alerts, lines.join('\n') + '\n');
    const r = await exportRunSlices(runConfig(db, join(work, 'fifty'), alerts, { window: 'pre52_post4948' }));
    expect(r.alerts).toBe(50_004);
    const coverage = await coverageRows(r.coverage_path);
    expect(coverage.length).toBe(50_004);
    expect(coverage.filter((c) => c.status === 'insufficient').length).toBe(50_000);
    const slices = await sliceRows(r.run_dir);
    expect(new Set(slices.map((s) => s.mint))).toEqual(new Set(MINTS.slice(0, 4)));
    // The fixture's mints hold two days (2,880 minutes, every 11th missing): the window's part of them.
    expect(slices.length).toBe(r.total_rows);
    expect(r.rows_fetched).toBe(r.total_rows + r.duplicates_dropped);
  });

  it('a server that breaks the key order it was trusted with changes no byte of the run', async () => {
    // A plain MergeTree with several unmerged parts: ClickHouse 18.16 reads them in parallel, out of key order.
    // QUANTBOT_LAKE_TEST_READ_ORDER=key (debug builds only) makes the exporter trust that order anyway; it must
    // notice, start over sorted, and write exactly what an export that asked for sorted rows writes.
    const parts = await freshDatabase('unordered');
    await chQuery(
      `CREATE TABLE ${parts}.ohlcv_candles (token_address String, chain String, timestamp DateTime, interval_seconds UInt32, ` +
        `open Float64, high Float64, low Float64, close Float64, volume Float64) ENGINE = MergeTree ` +
        `ORDER BY (token_address, chain, timestamp, interval_seconds) SETTINGS index_granularity = 64`,
    );
    for (let part = 0; part < 4; part++) {
      await chQuery(
        `INSERT INTO ${parts}.ohlcv_candles SELECT concat('m', toString(number % 50)), 'solana', ` +
          `toDateTime(${T0} + intDiv(number, 50) * 240 + ${part} * 60), 60, number, number + 1, number - 1, number / 2, ${part} ` +
          `FROM system.numbers LIMIT 20000`,
      );
    }
    const alerts = join(work, 'unordered.csv');
    writeFileSync(alerts, ['mint,ts', ...Array.from({ length: 50 }, (_, k) => `m${k},${T0 + 1500 * 60}`)].join('\n') + '\n');
    const url = clickhouseUrl();
    const run = (root: string, env: Record<string, string>) =>
      quantbot(
        ['lake', 'export-run-slices', '--run-id', 'u', '--interval', '1m', '--window', 'pre1500_post300', '--alerts', alerts,
          '--data-root', root, '--table', 'ohlcv_candles', '--format', 'json'],
        { CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port, CLICKHOUSE_DATABASE: parts, ...env },
      );
    const sorted = run(join(work, 'sorted'), {});
    expect(sorted.code, sorted.stderr).toBe(0);
    const trusted = run(join(work, 'trusted'), { QUANTBOT_LAKE_TEST_READ_ORDER: 'key' });
    expect(trusted.code, trusted.stderr).toBe(0);
    const a = filesUnder(join(work, 'sorted', 'lake', 'runs', 'run_id=u'));
    const b = filesUnder(join(work, 'trusted', 'lake', 'runs', 'run_id=u'));
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [path, bytes] of a) {
      if (path !== 'manifest.json') expect(b.get(path)!.equals(bytes), path).toBe(true);
    }
    const rows = await sliceRows(join(work, 'sorted', 'lake', 'runs', 'run_id=u'));
    expect(rows.length).toBe(50 * 1600);
    await chQuery(`DROP DATABASE IF EXISTS ${parts}`);
  });
});
