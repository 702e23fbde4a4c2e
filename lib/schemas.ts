/** Zod schemas of the lake exporter's configs and results (docs/lake-format.md). Every default and limit comes from
 * the addon's `configFacts()`, so the schemas and the exporter cannot disagree. */
import { z } from 'zod';
import { configFacts } from '#native';

/** Every default and limit of the export configs, as the exporter applies them. */
export const CONFIG_FACTS = configFacts();
const F = CONFIG_FACTS;

/** `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`: no run id can escape the runs directory. */
export const RUN_ID_PATTERN = new RegExp(F.run_id_pattern);
/** `<N>s|m|h|d` (case-insensitive) or bare seconds. */
export const INTERVAL_PATTERN = /^(?:[0-9]+[smhdSMHD]?)$/;
/** `pre<N>_post<M>`. */
export const WINDOW_PATTERN = /^pre(\d+)_post(\d+)$/;
const IDENTIFIER_PATTERN = new RegExp(F.identifier_pattern);

/** A whole number in the field's range, defaulting as the exporter does. */
const whole = (range: { default: number; min: number; max: number }) =>
  z.number().int().min(range.min).max(range.max).default(range.default);
/** One of the field's values, defaulting as the exporter does. */
const choice = <T extends string>(values: readonly [T, ...T[]], facts: { default: string; values: string[] }) => {
  const missing = facts.values.filter((v) => !(values as readonly string[]).includes(v));
  if (missing.length || facts.values.length !== values.length) {
    throw new Error(`the addon accepts ${facts.values.join(', ')}; this package knows ${values.join(', ')}: rebuild both`);
  }
  return z.enum(values).default(facts.default as T);
};
const COMPRESSIONS = ['zstd', 'snappy', 'none'] as const;
const SOURCES = ['clickhouse', 'corpus'] as const;

/** The `clickhouse` block: the HTTP interface of the candle server. */
export const ClickHouseConnectionSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  database: z.string().regex(IDENTIFIER_PATTERN, 'letters, digits and underscores, not starting with a digit'),
  table: z.string().regex(IDENTIFIER_PATTERN, 'letters, digits and underscores, not starting with a digit'),
  user: z.string().min(1),
  password: z.string().default(''),
  connect_timeout: whole(F.connect_timeout),
  send_receive_timeout: whole(F.send_receive_timeout),
  retries: whole(F.retries),
  retry_max_wait: whole(F.retry_max_wait),
  secure: z.boolean().default(false),
  ca_cert: z.string().min(1).optional(),
});

/** The `object_store` block: region, endpoint, credentials and retry budget of an `s3://` data root (else the AWS environment's). */
export const ObjectStoreSchema = z.strictObject({
  region: z.string().min(1).optional(),
  endpoint: z.string().url().optional(),
  allow_http: z.boolean().optional(),
  access_key_id: z.string().min(1).optional(),
  secret_access_key: z.string().min(1).optional(),
  session_token: z.string().min(1).optional(),
  // No default here: left out, AWS_MAX_ATTEMPTS (then the exporter's default) decides.
  retries: z.number().int().min(F.retries.min).max(F.retries.max).optional(),
  retry_max_wait: z.number().int().min(F.retry_max_wait.min).max(F.retry_max_wait.max).optional(),
});

/** The run-slice export config (snake_case on the wire), strict: unknown keys are rejected. */
export const LakeRunSliceExportConfigSchema = z
  .strictObject({
  data_root: z.string().min(1),
  run_id: z.string().regex(RUN_ID_PATTERN, '1-128 letters, digits, ".", "_" or "-", starting with a letter or digit'),
  interval: z
    .string()
    .regex(INTERVAL_PATTERN, 'expected <N>s, <N>m, <N>h, <N>d or bare seconds, e.g. "1m"')
    .refine((s) => Number.parseInt(s, 10) > 0, 'the interval must be greater than zero'),
  window: z
    .string()
    .regex(WINDOW_PATTERN, 'expected pre<N>_post<M>, e.g. "pre52_post4948"')
    .refine((s) => {
      const m = WINDOW_PATTERN.exec(s);
      return !!m && Number(m[1]) <= F.max_window_candles && Number(m[2]) <= F.max_window_candles;
    }, `pre and post are at most ${F.max_window_candles} candles each`),
  alerts_path: z
    .string()
    .min(1)
    .refine((p) => /\.(parquet|csv)$/i.test(p), 'the alerts file must end in .parquet or .csv'),
  chain: z.string().min(1).default(F.chain),
  compression: choice(COMPRESSIONS, F.compression),
  target_file_mb: whole(F.target_file_mb),
  strict_coverage: z.boolean().default(false),
  min_required_pre: whole(F.min_required_pre),
  target_total: whole(F.target_total),
  clickhouse: ClickHouseConnectionSchema.optional(),
  object_store: ObjectStoreSchema.optional(),
  overwrite: z.boolean().default(false),
  concurrency: whole(F.concurrency),
  source: choice(SOURCES, F.source),
  require_fresh: z.boolean().default(false),
})
  .refine((c) => c.source === 'corpus' || c.clickhouse !== undefined, {
    path: ['clickhouse'],
    message: 'required unless source is "corpus"',
  })
  .refine((c) => !c.require_fresh || (c.source === 'corpus' && c.clickhouse !== undefined), {
    path: ['require_fresh'],
    message: 'applies to source "corpus" and needs clickhouse, the server whose fingerprints the days must match',
  });

/** What callers pass (defaults optional). */
export type LakeRunSliceExportConfigInput = z.input<typeof LakeRunSliceExportConfigSchema>;
/** The validated config handed to the addon. */
export type LakeRunSliceExportConfig = z.output<typeof LakeRunSliceExportConfigSchema>;

const FileEntrySchema = z.object({ path: z.string(), rows: z.number(), bytes: z.number(), sha256: z.string().length(64) });

/** The sealed run manifest (docs/lake-format.md, "Run manifest"): the original exporter's structure, extended with
 * chain, files, stats and seal. */
export const LakeManifestSchema = z.object({
  lake_version: z.literal('v1'),
  run_id: z.string(),
  created_at: z.string(),
  exporter: z.object({ name: z.string(), version: z.string() }),
  inputs: z.object({
    alerts: z.object({ path: z.string(), sha256: z.string(), rows: z.number() }),
    source_snapshot: z.union([
      z.object({ clickhouse: z.object({ cluster: z.string(), database: z.string(), table: z.string(), as_of: z.string() }) }),
      z.object({
        corpus: z.object({
          path: z.string(),
          days: z.array(z.object({ date: z.string(), seal: z.string(), fingerprint: z.string().length(64).optional() })),
        }),
      }),
    ]),
  }),
  slice_spec: z.object({
    dataset: z.literal('ohlcv'),
    interval: z.string(),
    window: z.string(),
    anchor_rule: z.string(),
    chain: z.string(),
  }),
  outputs: z.record(z.string(), z.object({ mint_buckets: z.array(z.string()), files: z.number(), rows: z.number() })),
  coverage: z.object({
    min_required_pre: z.number(),
    target_total: z.number(),
    kept_events: z.number(),
    dropped_events: z.number(),
    strict: z.boolean(),
  }),
  files: z.array(FileEntrySchema),
  stats: z.object({ rows_fetched: z.number(), duplicates_dropped: z.number(), retries: z.number().optional() }),
  seal: z.object({ algorithm: z.literal('sha256'), value: z.string().length(64) }),
});

/** A manifest. */
export type LakeManifest = z.output<typeof LakeManifestSchema>;

/** The export result: the original exporter's fields plus fetch counters and duration. */
export const LakeExportResultSchema = z.object({
  manifest: LakeManifestSchema,
  manifest_path: z.string(),
  coverage_path: z.string(),
  total_rows: z.number().int().nonnegative(),
  total_files: z.number().int().nonnegative(),
  total_bytes: z.number().int().nonnegative(),
  run_dir: z.string(),
  rows_fetched: z.number().int().nonnegative(),
  duplicates_dropped: z.number().int().nonnegative(),
  retries: z.number().int().nonnegative(),
  alerts: z.number().int().nonnegative(),
  kept_events: z.number().int().nonnegative(),
  dropped_events: z.number().int().nonnegative(),
  duration_ms: z.number().nonnegative(),
});

/** A validated export result. */
export type LakeExportResult = z.output<typeof LakeExportResultSchema>;

/** The corpus export config: every candle of an interval for each UTC day in `[date_from, date_to)`. */
export const LakeCorpusExportConfigSchema = z.strictObject({
  data_root: z.string().min(1),
  interval: LakeRunSliceExportConfigSchema.shape.interval,
  date_from: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a UTC date like "2025-01-31"'),
  date_to: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a UTC date like "2025-02-01" (exclusive)'),
  chain: z.string().min(1).default(F.chain),
  compression: choice(COMPRESSIONS, F.compression),
  target_file_mb: whole(F.target_file_mb),
  mint_filter: z
    .array(z.string().min(1).refine((m) => Buffer.byteLength(m) <= F.max_mint_bytes, `at most ${F.max_mint_bytes} bytes`))
    .min(1)
    .max(F.max_mint_filter)
    .optional(),
  buckets: z
    .string()
    .regex(/^[0-9a-fA-F]{2}(?:-[0-9a-fA-F]{2})?$/, 'two-digit hex bounds like "00-3f" (inclusive)')
    .optional(),
  shard: z
    .string()
    .regex(/^\d+\/\d+$/, 'K/N: the K-th (from 0) of N shards, e.g. 0/4')
    .optional(),
  shards: z.number().int().min(1).max(256).optional(),
  overwrite: z.boolean().default(false),
  concurrency: whole(F.concurrency),
  clickhouse: ClickHouseConnectionSchema,
  object_store: ObjectStoreSchema.optional(),
}).refine((c) => [c.buckets, c.shard, c.shards].filter((v) => v !== undefined).length <= 1, {
  message: 'give one of buckets, shard and shards: each picks this process\'s buckets',
  path: ['shard'],
});

/** What callers pass to a corpus export. */
export type LakeCorpusExportConfigInput = z.input<typeof LakeCorpusExportConfigSchema>;
/** A validated corpus export config. */
export type LakeCorpusExportConfig = z.output<typeof LakeCorpusExportConfigSchema>;

/** A corpus export result. */
export const LakeCorpusExportResultSchema = z.object({
  corpus_dir: z.string(),
  days: z.array(
    z.object({
      date: z.string(),
      status: z.enum(['exported', 'skipped', 'redone']),
      reason: z.enum(['new', 'fresh', 'unfingerprinted', 'stale', 'damaged', 'other_selection', 'overwrite']),
      detail: z.string(),
      dir: z.string(),
      rows: z.number().int().nonnegative(),
      files: z.number().int().nonnegative(),
      bytes: z.number().int().nonnegative(),
      sealed: z.boolean(),
      refreshed: z
        .object({
          buckets: z.number().int().nonnegative(),
          mints: z.number().int().nonnegative(),
          files_kept: z.number().int().nonnegative(),
        })
        .optional(),
    }),
  ),
  rows_fetched: z.number().int().nonnegative(),
  duplicates_dropped: z.number().int().nonnegative(),
  retries: z.number().int().nonnegative(),
  duration_ms: z.number().nonnegative(),
});

/** A validated corpus export result. */
export type LakeCorpusExportResult = z.output<typeof LakeCorpusExportResultSchema>;

/** Where each day of a corpus range stands (`corpusStatus`). */
export const LakeCorpusStatusSchema = z.object({
  corpus_dir: z.string(),
  days: z.array(
    z.object({
      date: z.string(),
      state: z.enum(['missing', 'fresh', 'stale', 'damaged', 'unknown']),
      detail: z.string(),
      dir: z.string(),
    }),
  ),
});

/** A validated corpus status. */
export type LakeCorpusStatus = z.output<typeof LakeCorpusStatusSchema>;

/** Turns Zod issues into one readable line per problem, naming each field (and each unknown key). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const at = issue.path.length ? issue.path.join('.') : 'config';
      if (issue.code === 'unrecognized_keys') return `${at}: unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      return `${at}: ${issue.message}`;
    })
    .join('; ');
}
