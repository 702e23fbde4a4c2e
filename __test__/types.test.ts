/** The TypeScript surface against the addon's: the Zod types and the generated declarations must not drift apart,
 * and the schemas apply exactly the defaults and limits the addon reports. */
import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type {
  ClickhouseConnection as NativeConnection,
  LakeCorpusExportConfig as NativeCorpusConfig,
  LakeCorpusExportResult as NativeCorpusResult,
  LakeExportResult as NativeRunResult,
  LakeObjectStore as NativeObjectStore,
  LakeRunSliceExportConfig as NativeRunConfig,
} from '#native';
import { configFacts } from '#native';
import {
  ClickHouseConnectionSchema,
  LakeCorpusExportConfigSchema,
  LakeRunSliceExportConfigSchema,
  ObjectStoreSchema,
  type LakeCorpusExportConfig,
  type LakeCorpusExportConfigInput,
  type LakeCorpusExportResult,
  type LakeExportResult,
  type LakeRunSliceExportConfig,
  type LakeRunSliceExportConfigInput,
} from '../lib/schemas.js';
import type { z } from 'zod';

type Connection = z.output<typeof ClickHouseConnectionSchema>;
type ConnectionInput = z.input<typeof ClickHouseConnectionSchema>;
type ObjectStore = z.output<typeof ObjectStoreSchema>;

describe('types', () => {
  it('validated configs are what the addon accepts, and the addon accepts nothing more', () => {
    expectTypeOf<LakeRunSliceExportConfig>().toExtend<NativeRunConfig>();
    expectTypeOf<NativeRunConfig>().toExtend<LakeRunSliceExportConfigInput>();
    expectTypeOf<LakeCorpusExportConfig>().toExtend<NativeCorpusConfig>();
    expectTypeOf<NativeCorpusConfig>().toExtend<LakeCorpusExportConfigInput>();
    expectTypeOf<Connection>().toExtend<NativeConnection>();
    expectTypeOf<NativeConnection>().toExtend<ConnectionInput>();
    expectTypeOf<keyof NativeRunConfig>().toEqualTypeOf<keyof LakeRunSliceExportConfig>();
    expectTypeOf<keyof NativeCorpusConfig>().toEqualTypeOf<keyof LakeCorpusExportConfig>();
    expectTypeOf<keyof NativeConnection>().toEqualTypeOf<keyof Connection>();
    expectTypeOf<ObjectStore>().toExtend<NativeObjectStore>();
    expectTypeOf<NativeObjectStore>().toExtend<z.input<typeof ObjectStoreSchema>>();
    expectTypeOf<keyof NativeObjectStore>().toEqualTypeOf<keyof ObjectStore>();
  });

  it('validated results are what the addon returns, field for field', () => {
    expectTypeOf<Omit<LakeExportResult, 'manifest'>>().toExtend<Omit<NativeRunResult, 'manifest'>>();
    expectTypeOf<Omit<NativeRunResult, 'manifest'>>().toExtend<Omit<LakeExportResult, 'manifest'>>();
    expectTypeOf<keyof NativeRunResult>().toEqualTypeOf<keyof LakeExportResult>();
    expectTypeOf<LakeCorpusExportResult>().toExtend<NativeCorpusResult>();
    expectTypeOf<keyof NativeCorpusResult>().toEqualTypeOf<keyof LakeCorpusExportResult>();
    expectTypeOf<keyof NativeCorpusResult['days'][number]>().toEqualTypeOf<keyof LakeCorpusExportResult['days'][number]>();
  });

  it('the schemas apply the addon’s defaults', () => {
    const facts = configFacts();
    const clickhouse = { host: 'h', port: 8123, database: 'd', table: 't', user: 'u' };
    const run = LakeRunSliceExportConfigSchema.parse({
      data_root: '/x',
      run_id: 'r',
      interval: '1m',
      window: 'pre1_post1',
      alerts_path: 'a.csv',
      clickhouse,
    });
    expect(run).toMatchObject({
      chain: facts.chain,
      compression: facts.compression.default,
      source: facts.source.default,
      target_file_mb: facts.target_file_mb.default,
      min_required_pre: facts.min_required_pre.default,
      target_total: facts.target_total.default,
      concurrency: facts.concurrency.default,
      clickhouse: { connect_timeout: facts.connect_timeout.default, send_receive_timeout: facts.send_receive_timeout.default },
    });
    const corpus = LakeCorpusExportConfigSchema.parse({ data_root: '/x', interval: '1m', date_from: '2025-01-01', date_to: '2025-01-02', clickhouse });
    expect(corpus).toMatchObject({ chain: facts.chain, concurrency: facts.concurrency.default, target_file_mb: facts.target_file_mb.default });
  });

  it('the schemas reject exactly past the addon’s limits', () => {
    const facts = configFacts();
    const base = { data_root: '/x', run_id: 'r', interval: '1m', window: 'pre1_post1', alerts_path: 'a.csv', source: 'corpus' };
    for (const [field, range] of [
      ['concurrency', facts.concurrency],
      ['target_file_mb', facts.target_file_mb],
      ['min_required_pre', facts.min_required_pre],
      ['target_total', facts.target_total],
    ] as const) {
      expect(LakeRunSliceExportConfigSchema.safeParse({ ...base, [field]: range.max }).success, field).toBe(true);
      expect(LakeRunSliceExportConfigSchema.safeParse({ ...base, [field]: range.max + 1 }).success, field).toBe(false);
      expect(LakeRunSliceExportConfigSchema.safeParse({ ...base, [field]: range.min - 1 }).success, field).toBe(false);
    }
    const w = facts.max_window_candles;
    expect(LakeRunSliceExportConfigSchema.safeParse({ ...base, window: `pre${w}_post1` }).success).toBe(true);
    expect(LakeRunSliceExportConfigSchema.safeParse({ ...base, window: `pre${w + 1}_post1` }).success).toBe(false);
  });

  it('the format document states the addon’s defaults and ranges', () => {
    const facts = configFacts();
    const doc = readFileSync(new URL('../docs/lake-format.md', import.meta.url), 'utf8').split('\n');
    const cells = (field: string): string[] => {
      const line = doc.find((l) => l.startsWith(`| \`${field}\` |`));
      expect(line, `a table row for ${field}`).toBeDefined();
      return line!.split('|').map((c) => c.trim());
    };
    for (const [field, range] of [
      ['target_file_mb', facts.target_file_mb],
      ['min_required_pre', facts.min_required_pre],
      ['target_total', facts.target_total],
      ['concurrency', facts.concurrency],
      ['clickhouse.connect_timeout', facts.connect_timeout],
      ['clickhouse.send_receive_timeout', facts.send_receive_timeout],
    ] as const) {
      expect(cells(field)[3], field).toBe(String(range.default));
      expect(cells(field)[4], field).toContain(`${range.min} to ${range.max}`);
    }
    expect(cells('chain')[3]).toBe(`\`${facts.chain}\``);
    for (const [field, choice] of [['compression', facts.compression], ['source', facts.source]] as const) {
      expect(cells(field)[3], field).toBe(`\`${choice.default}\``);
      for (const v of choice.values) expect(cells(field)[4], field).toContain(`\`${v}\``);
    }
    expect(cells('date_to')[4]).toContain(`1 to ${facts.max_corpus_days} days`);
    expect(cells('mint_filter')[4]).toContain(`1 to ${facts.max_mint_filter} mints of 1 to ${facts.max_mint_bytes} bytes`);
    expect(doc.join('\n')).toContain(`up to ${facts.max_window_candles.toLocaleString('en-US')}`);
  });
});
