// Exports that meet a flaky network or a restarting ClickHouse: transient failures are retried within the budget,
// a fetch resumes from the first mint not yet received whole, and the files equal a clean export's byte for byte.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportCorpus, exportRunSlices, type LakeCorpusExportConfig, type LakeProgressEvent } from '#native';
import { clickhouseUrl, connection, startOwnServer } from './support/clickhouse.js';
import { quantbot, startQuantbot } from './support/cli.js';
import { rejection } from './support/errors.js';
import { startFaultProxy } from './support/fault-proxy.js';
import { MINTS, T0, useCandleFixture } from './support/fixture.js';
import { filesUnder, runConfig, runsDirEntries, tempDir } from './support/lake.js';

/** Every file of a sealed directory but its manifest (which holds times and the retry count). */
function dataFiles(dir: string): Map<string, Buffer> {
  return new Map([...filesUnder(dir)].filter(([path]) => !path.endsWith('manifest.json')));
}

function expectSameFiles(got: Map<string, Buffer>, want: Map<string, Buffer>) {
  expect([...got.keys()]).toEqual([...want.keys()]);
  expect([...want.keys()].filter((p) => p.endsWith('.parquet')).length).toBeGreaterThan(3);
  for (const [path, bytes] of want) expect(got.get(path)!.equals(bytes), `${path} differs from the clean export's`).toBe(true);
}

describe('retries: a flaky network and a restarting ClickHouse', () => {
  const fixture = useCandleFixture('retry');
  let work: string;
  let alerts: string;
  beforeAll(() => {
    work = tempDir('lake-retry');
    alerts = join(work, 'alerts.csv');
    // One alert per mint whose window covers both days of its candles: about 2.3 MB of answers.
    writeFileSync(alerts, ['alert_id,mint,ts', ...MINTS.map((m, i) => `a${i},"${m.replaceAll('"', '""')}",${T0 + 1440 * 60}`)].join('\n') + '\n');
  });
  const window = 'pre1500_post1500';

  it('run slices and a corpus export through a proxy that cuts answers mid-stream are byte-identical to clean ones', async () => {
    const clean = await exportRunSlices(runConfig(fixture.db, join(work, 'clean'), alerts, { run_id: 'r', window }));
    const corpusOf = (root: string, port?: number): LakeCorpusExportConfig => ({
      data_root: root,
      interval: '1m',
      date_from: '2021-01-01',
      date_to: '2021-01-03',
      clickhouse: connection(fixture.db, 'ohlcv_candles', port ? { port } : {}),
    });
    const cleanCorpus = await exportCorpus(corpusOf(join(work, 'clean-corpus')));

    // Every connection cut once at a seeded offset inside its first 300 KB, four cuts in all.
    const proxy = await startFaultProxy(clickhouseUrl(), { seed: 20261203, cutShare: 1, maxCuts: 4, cutWithin: 300_000 });
    try {
      const events: LakeProgressEvent[] = [];
      const cut = await exportRunSlices(
        { ...runConfig(fixture.db, join(work, 'cut'), alerts, { run_id: 'r', window }), clickhouse: connection(fixture.db, 'ohlcv_candles', { port: proxy.port }) },
        { onProgress: (e) => events.push(e) },
      );
      const retries = events.filter((e) => e.retry);
      expect(proxy.stats.cut).toBeGreaterThanOrEqual(1);
      expect(cut.retries).toBeGreaterThanOrEqual(1);
      expect(retries).toHaveLength(cut.retries);
      expect(retries.every((e) => e.retry!.attempt >= 1 && e.retry!.retries === 5 && e.retry!.wait_ms > 0)).toBe(true);
      expect(new Set(retries.map((e) => e.retry!.cause))).toEqual(new Set(['connection_lost']));
      expect((cut.manifest as { stats: { retries: number } }).stats.retries).toBe(cut.retries);
      // Whole mints only: nothing received twice, nothing lost.
      expect([cut.rows_fetched, cut.total_rows]).toEqual([clean.rows_fetched, clean.total_rows]);
      expectSameFiles(dataFiles(cut.run_dir), dataFiles(clean.run_dir));
      expect(clean.retries).toBe(0);

      // A corpus day is read by one range query: cut it too, through a proxy of its own.
      const corpusProxy = await startFaultProxy(clickhouseUrl(), { seed: 42, cutShare: 1, maxCuts: 3, cutWithin: 300_000 });
      const corpus = await exportCorpus(corpusOf(join(work, 'cut-corpus'), corpusProxy.port)).finally(() => corpusProxy.close());
      console.log(`retries: run ${cut.retries} (${proxy.stats.cut} cuts), corpus ${corpus.retries} (${corpusProxy.stats.cut} cuts)`);
      expect(corpus.retries).toBeGreaterThanOrEqual(1);
      expect(corpus.days.map((d) => d.status)).toEqual(['exported', 'exported']);
      expect(corpus.rows_fetched).toBe(cleanCorpus.rows_fetched);
      for (const [day, cleanDay] of corpus.days.map((d, i) => [d, cleanCorpus.days[i]!] as const)) {
        expectSameFiles(dataFiles(day.dir), dataFiles(cleanDay.dir));
      }
    } finally {
      await proxy.close();
    }
  });

  it('refused connections and an answer that stalls past the receive timeout are retried too', async () => {
    const proxy = await startFaultProxy(clickhouseUrl(), { seed: 1, stall: { connections: [1], ms: 2500 } });
    try {
      const refusing = proxy.refuseFor(1200);
      const events: LakeProgressEvent[] = [];
      const result = await exportRunSlices(
        {
          ...runConfig(fixture.db, join(work, 'stall'), alerts, { run_id: 'r', window: 'pre10_post10' }),
          clickhouse: connection(fixture.db, 'ohlcv_candles', { port: proxy.port, connect_timeout: 1, send_receive_timeout: 1 }),
        },
        { onProgress: (e) => events.push(e) },
      );
      await refusing;
      const causes = events.filter((e) => e.retry).map((e) => e.retry!.cause);
      expect(causes).toContain('unreachable');
      expect(causes).toContain('timeout');
      expect(result.retries).toBe(causes.length);
      expect(proxy.stats.stalled).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('when the budget runs out: one coded error with the cause, the attempts and the time, nothing published, in time', async () => {
    const root = join(work, 'down');
    const started = Date.now();
    const err = await rejection(
      exportRunSlices({ ...runConfig(fixture.db, root, alerts, { run_id: 'down' }), clickhouse: connection(fixture.db, 'ohlcv_candles', { port: 1, retries: 3, retry_max_wait: 20 }) }),
    );
    const elapsed = Date.now() - started;
    expect(err.code).toBe('CLICKHOUSE_UNREACHABLE');
    expect(err.message).toMatch(/^cannot reach ClickHouse at http:\/\/127\.0\.0\.1:1: .*; gave up after 4 attempts over \d+\.\d s \(clickhouse\.retries 3, clickhouse\.retry_max_wait 20 s\)$/);
    // Waits of 0.25-0.5, 0.5-1 and 1-2 s.
    expect(elapsed).toBeGreaterThan(1_500);
    expect(elapsed).toBeLessThan(20_000);
    expect(runsDirEntries(root)).toEqual([]);

    // The CLI shows each retry as a line, then the error.
    const url = clickhouseUrl();
    const cli = quantbot(
      ['lake', 'export-run-slices', '--run-id', 'down-cli', '--interval', '1m', '--window', 'pre10_post10', '--alerts', alerts, '--data-root', root,
        '--retries', '2', '--retry-max-wait', '30'],
      { CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: '1', CLICKHOUSE_DATABASE: fixture.db },
    );
    expect(cli.code).toBe(1);
    const lines = cli.stderr.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual([
      expect.stringMatching(/^quantbot lake: ClickHouse cannot be reached; retrying in \d+ ms, retry 1 of 2$/),
      expect.stringMatching(/^quantbot lake: ClickHouse cannot be reached; retrying in (\d+ ms|1 s), retry 2 of 2$/),
    ]);
    expect(lines[2]).toMatch(/^quantbot lake: CLICKHOUSE_UNREACHABLE: cannot reach ClickHouse .* gave up after 3 attempts/);
    expect(lines).toHaveLength(3);
    expect(runsDirEntries(root)).toEqual([]);
  });

  it('what cannot succeed is asked exactly once, whatever the budget', async () => {
    const proxy = await startFaultProxy(clickhouseUrl(), { seed: 2 });
    try {
      const requestsOf = async (clickhouse: Record<string, unknown>) => {
        const before = proxy.stats.requests;
        const err = await rejection(exportRunSlices({ ...runConfig(fixture.db, join(work, 'once'), alerts, { run_id: 'once' }), clickhouse } as never));
        return { code: err.code, requests: proxy.stats.requests - before };
      };
      const base = connection(fixture.db, 'ohlcv_candles', { port: proxy.port });
      for (const [bad, code] of [
        [{ user: 'tester', password: 'wrong-pass' }, 'CLICKHOUSE_AUTH'],
        [{ table: 'no_such_table' }, 'CLICKHOUSE_SCHEMA'],
        [{ database: 'no_such_db' }, 'CLICKHOUSE_SCHEMA'],
      ] as const) {
        const failFast = await requestsOf({ ...base, ...bad, retries: 0 });
        const budget = await requestsOf({ ...base, ...bad, retries: 10 });
        expect(failFast.code).toBe(code);
        expect(budget).toEqual(failFast);
        expect(budget.requests).toBeGreaterThanOrEqual(1);
      }
    } finally {
      await proxy.close();
    }
  });

  it('a ClickHouse killed mid-export and started again 3 s later: the export waits for it and writes the clean bytes', async () => {
    const server = await startOwnServer();
    const url = server.url;
    try {
      await server.q(`INSERT INTO quantbot.ohlcv_candles SELECT concat('M', toString(number % 200)), 'solana', ` +
        `toDateTime(${T0} + intDiv(number, 200) * 60), 60, number % 7, 1, 1, 1, 1 FROM system.numbers LIMIT 400000`);
      const many = join(work, 'many.csv');
      // Windows of 10,000 slots over 200 mints: two queries of 1M slots, the second made after the first is read.
      writeFileSync(many, ['mint,ts', ...Array.from({ length: 200 }, (_, i) => `M${i},${T0 + 9999 * 60}`)].join('\n') + '\n');
      const args = (root: string) => ['lake', 'export-run-slices', '--run-id', 'restart', '--interval', '1m', '--window', 'pre9999_post0',
        '--alerts', many, '--data-root', root, '--concurrency', '1', '--format', 'json'];
      const env = { CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port };
      const clean = quantbot(args(join(work, 'restart-clean')), env);
      expect(clean.code, clean.stderr).toBe(0);

      const root = join(work, 'restarted');
      const run = startQuantbot(args(root), { ...env, QUANTBOT_LAKE_FAILPOINT: 'export.write_mint:sleep=25' });
      await sleep(1000);
      server.kill();
      await sleep(3000);
      server.restart();
      const exit = await run.done;
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stderr).toMatch(/^quantbot lake: (ClickHouse cannot be reached|connection to ClickHouse lost).*; retrying in /m);
      const runDir = (r: string) => join(r, 'lake', 'runs', 'run_id=restart');
      expectSameFiles(dataFiles(runDir(root)), dataFiles(runDir(join(work, 'restart-clean'))));
    } finally {
      server.stop();
    }
  });
});
