/** `LakeExporterService`: what QuantBot code calls. Validates with Zod, then calls the Rust addon directly. */
import * as native from '#native';
import type { LakeProgressEvent, LakeVerifyReport } from '#native';
import { isLakeError, lakeError } from './errors.js';
import type { z } from 'zod';
import {
  describeIssues,
  LakeCorpusExportConfigSchema,
  LakeCorpusExportResultSchema,
  LakeCorpusStatusSchema,
  LakeExportResultSchema,
  LakeRunSliceExportConfigSchema,
  type LakeCorpusExportConfigInput,
  type LakeCorpusExportResult,
  type LakeCorpusStatus,
  type LakeExportResult,
  type LakeRunSliceExportConfigInput,
} from './schemas.js';

/** Where the service reports start and finish. Never receives the password. */
export interface LakeLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that says nothing: the default. */
export const quietLogger: LakeLogger = { info: () => {}, error: () => {} };

/** Options of one export call. */
export interface ExportCallOptions {
  /** Throttled progress events (a few per second at most). */
  onProgress?: (event: LakeProgressEvent) => void;
  /** Aborting stops the export within a second; it rejects with `CANCELLED` and leaves nothing behind. */
  signal?: AbortSignal;
}

/** The slice of the addon the service uses; injectable for unit tests. */
export interface LakeNative {
  exportRunSlices: typeof native.exportRunSlices;
  exportCorpus: typeof native.exportCorpus;
  corpusStatus: typeof native.corpusStatus;
  verifyLakeDir: typeof native.verifyLakeDir;
}

/** Construction options. */
export interface LakeExporterServiceOptions {
  logger?: LakeLogger;
  native?: LakeNative;
}

/** Exports run slices and verifies runs; every failure is an Error with a stable lake `code`. */
export class LakeExporterService {
  private readonly logger: LakeLogger;
  private readonly native: LakeNative;

  constructor(options: LakeExporterServiceOptions = {}) {
    this.logger = options.logger ?? quietLogger;
    this.native = options.native ?? native;
  }

  /** Validates `config` (rejecting with `INVALID_CONFIG` before anything native runs), exports the run slices and
   * returns the validated result. */
  async exportRunSlices(config: LakeRunSliceExportConfigInput, options: ExportCallOptions = {}): Promise<LakeExportResult> {
    return this.run('run-slice export', LakeRunSliceExportConfigSchema, LakeExportResultSchema, config, (cfg) => ({
      fields: { run_id: cfg.run_id, interval: cfg.interval, window: cfg.window, alerts_path: cfg.alerts_path, source: cfg.source },
      call: () => this.native.exportRunSlices(cfg, options),
      summary: (r) => ({ total_rows: r.total_rows, total_files: r.total_files, retries: r.retries, duration_ms: r.duration_ms }),
    }));
  }

  /** Validates `config`, exports the corpus day by day and returns the validated result. */
  async exportCorpus(config: LakeCorpusExportConfigInput, options: ExportCallOptions = {}): Promise<LakeCorpusExportResult> {
    return this.run('corpus export', LakeCorpusExportConfigSchema, LakeCorpusExportResultSchema, config, (cfg) => ({
      fields: { interval: cfg.interval, date_from: cfg.date_from, date_to: cfg.date_to, buckets: cfg.buckets ?? cfg.shard ?? (cfg.shards ? `one of ${cfg.shards}` : '00-ff') },
      call: () => this.native.exportCorpus(cfg, options),
      summary: (r) => ({ days: r.days.length, rows_fetched: r.rows_fetched, retries: r.retries, duration_ms: r.duration_ms }),
    }));
  }

  /** Where each day of a corpus range stands — missing, fresh, stale, damaged or unknown — against the disk and
   * the server's fingerprints, writing nothing. Takes the corpus export's config (export-only fields are ignored). */
  async corpusStatus(config: LakeCorpusExportConfigInput): Promise<LakeCorpusStatus> {
    return this.run('corpus status', LakeCorpusExportConfigSchema, LakeCorpusStatusSchema, config, (cfg) => ({
      fields: { interval: cfg.interval, date_from: cfg.date_from, date_to: cfg.date_to, buckets: cfg.buckets ?? cfg.shard ?? (cfg.shards ? `one of ${cfg.shards}` : '00-ff') },
      call: () => this.native.corpusStatus(cfg),
      summary: (r) => {
        const counts: Record<string, number> = {};
        for (const d of r.days) counts[d.state] = (counts[d.state] ?? 0) + 1;
        return counts;
      },
    }));
  }

  /** Validate, log, call the addon, validate the result, log; every failure leaves as a coded error. */
  private async run<C extends z.ZodType, R extends z.ZodType>(
    what: string,
    configSchema: C,
    resultSchema: R,
    config: unknown,
    plan: (cfg: z.output<C>) => {
      fields: Record<string, unknown>;
      call: () => Promise<unknown>;
      summary: (result: z.output<R>) => Record<string, unknown>;
    },
  ): Promise<z.output<R>> {
    const parsed = configSchema.safeParse(config);
    if (!parsed.success) {
      throw lakeError('INVALID_CONFIG', `invalid ${what} config: ${describeIssues(parsed.error)}`);
    }
    const { fields, call, summary } = plan(parsed.data);
    this.logger.info(`lake ${what} started`, fields);
    try {
      const result = resultSchema.safeParse(await call());
      if (!result.success) {
        throw lakeError('INTERNAL', `the addon returned an unexpected result: ${describeIssues(result.error)}`);
      }
      this.logger.info(`lake ${what} finished`, { ...fields, ...summary(result.data) });
      return result.data;
    } catch (err) {
      const coded = isLakeError(err) ? err : lakeError('INTERNAL', `unexpected failure: ${String(err)}`);
      this.logger.error(`lake ${what} failed`, { ...fields, code: coded.code, message: coded.message });
      throw coded;
    }
  }

  /** Recomputes a sealed run's hashes, sizes, row counts and seal. */
  async verifyRun(runDir: string): Promise<LakeVerifyReport> {
    return this.native.verifyLakeDir(runDir);
  }
}
