import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { LakeExporterService, type LakeLogger, type LakeNative } from '../lib/service.js';
import { LakeExportResultSchema, type LakeRunSliceExportConfigInput } from '../lib/schemas.js';
import { connection } from './support/clickhouse.js';
import { rejection } from './support/errors.js';
import { MINTS, T0, useCandleFixture } from './support/fixture.js';
import { tempDir } from './support/lake.js';

const minimal = (): LakeRunSliceExportConfigInput => ({
  data_root: '/tmp/lake-test',
  run_id: 'r1',
  interval: '1m',
  window: 'pre52_post4948',
  alerts_path: '/tmp/alerts.csv',
  clickhouse: { host: '127.0.0.1', port: 8123, database: 'quantbot', table: 'ohlcv_candles', user: 'default' },
});

/** A stand-in addon that records what it was given (unit tests of validation only). */
function recordingNative(): LakeNative & { seen: unknown[] } {
  const seen: unknown[] = [];
  return {
    seen,
    exportRunSlices: (async (config: unknown) => {
      seen.push(config);
      throw Object.assign(new Error('stop here'), { code: 'CANCELLED' });
    }) as LakeNative['exportRunSlices'],
    exportCorpus: (async (config: unknown) => {
      seen.push(config);
      throw Object.assign(new Error('stop here'), { code: 'CANCELLED' });
    }) as LakeNative['exportCorpus'],
    corpusStatus: (async (config: unknown) => {
      seen.push(config);
      throw Object.assign(new Error('stop here'), { code: 'CANCELLED' });
    }) as LakeNative['corpusStatus'],
    verifyLakeDir: (async () => ({ dir: '', ok: true, files_checked: 0, problems: [] })) as LakeNative['verifyLakeDir'],
  };
}

describe('LakeExporterService validation', () => {
  it('applies every original default before calling the addon', async () => {
    const native = recordingNative();
    await rejection(new LakeExporterService({ native }).exportRunSlices(minimal()));
    expect(native.seen[0]).toEqual({
      ...minimal(),
      chain: 'solana',
      compression: 'zstd',
      target_file_mb: 512,
      strict_coverage: false,
      min_required_pre: 52,
      target_total: 5000,
      overwrite: false,
      concurrency: 2,
      source: 'clickhouse',
      require_fresh: false,
      clickhouse: { ...minimal().clickhouse, password: '', secure: false, connect_timeout: 10, send_receive_timeout: 300, retries: 5, retry_max_wait: 120 },
    });
  });

  const bad: Array<[string, Record<string, unknown>]> = [
    ['data_root', { data_root: '' }],
    ['run_id', { run_id: '../x' }],
    ['run_id', { run_id: 'a/b' }],
    ['interval', { interval: '1w' }],
    ['interval', { interval: '0m' }],
    ['window', { window: 'pre52' }],
    ['window', { window: 'pre-5_post10' }],
    ['alerts_path', { alerts_path: '/tmp/alerts.json' }],
    ['chain', { chain: '' }],
    ['compression', { compression: 'gzip' }],
    ['target_file_mb', { target_file_mb: 0 }],
    ['target_file_mb', { target_file_mb: 1.5 }],
    ['strict_coverage', { strict_coverage: 'yes' }],
    ['min_required_pre', { min_required_pre: -1 }],
    ['target_total', { target_total: 0 }],
    ['concurrency', { concurrency: 100 }],
    ['clickhouse.port', { clickhouse: { ...minimal().clickhouse, port: 70000 } }],
    ['clickhouse.table', { clickhouse: { ...minimal().clickhouse, table: 'x; DROP TABLE y' } }],
    ['clickhouse.user', { clickhouse: { ...minimal().clickhouse, user: undefined } }],
    ['clickhouse', { clickhouse: undefined }],
    ['source', { source: 's3' }],
  ];
  it.each(bad)('rejects a bad %s with INVALID_CONFIG naming it, before anything native runs', async (field, patch) => {
    const native = recordingNative();
    const err = await rejection(new LakeExporterService({ native }).exportRunSlices({ ...minimal(), ...patch } as never));
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.message).toContain(field);
    expect(native.seen).toEqual([]);
  });

  it('rejects unknown keys by name', async () => {
    const native = recordingNative();
    const err = await rejection(new LakeExporterService({ native }).exportRunSlices({ ...minimal(), targetFileMb: 5 } as never));
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.message).toContain('"targetFileMb"');
    const nested = await rejection(
      new LakeExporterService({ native }).exportRunSlices({ ...minimal(), clickhouse: { ...minimal().clickhouse, pass: 'x' } } as never),
    );
    expect(nested.message).toContain('clickhouse: unknown key(s) "pass"');
  });
});

describe('LakeExporterService against the real addon and server', () => {
  let db: string;
  const fixture = useCandleFixture('service');
  beforeAll(async () => {
    db = fixture.db;
  });

  it('exports, validates the result, logs start and finish without the password', async () => {
    const work = tempDir('lake-service');
    const alerts = join(work, 'alerts.csv');
    writeFileSync(alerts, `mint,ts\n${MINTS[0]},${T0 + 3600}\n${MINTS[1]},${T0 + 7200}\n`);
    const lines: string[] = [];
    const logger: LakeLogger = {
      info: (m, f) => lines.push(`info ${m} ${JSON.stringify(f)}`),
      error: (m, f) => lines.push(`error ${m} ${JSON.stringify(f)}`),
    };
    const service = new LakeExporterService({ logger });
    const result = await service.exportRunSlices({
      data_root: work,
      run_id: 'svc',
      interval: '1m',
      window: 'pre10_post20',
      alerts_path: alerts,
      clickhouse: connection(db, 'ohlcv_candles', { user: 'tester', password: 's3cret-pa55' }),
    });
    expect(LakeExportResultSchema.parse(result)).toEqual(result);
    expect(result.alerts).toBe(2);
    expect(result.total_rows).toBeGreaterThan(50);
    expect((await service.verifyRun(result.run_dir)).ok).toBe(true);
    expect(lines.map((l) => l.split(' {')[0])).toEqual(['info lake run-slice export started', 'info lake run-slice export finished']);
    expect(lines.join('\n')).not.toContain('s3cret-pa55');
    expect(JSON.stringify(result)).not.toContain('s3cret-pa55');

    const err = await rejection(
      service.exportRunSlices({
        data_root: work,
        run_id: 'svc',
        interval: '1m',
        window: 'pre10_post20',
        alerts_path: alerts,
        clickhouse: connection(db, 'ohlcv_candles'),
      }),
    );
    expect(err.code).toBe('RUN_EXISTS');
    expect(lines.at(-1)).toContain('lake run-slice export failed');
    expect(lines.at(-1)).toContain('RUN_EXISTS');
  });
});
