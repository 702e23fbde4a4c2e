/** `LakeExporterService`: what QuantBot code calls. Validates with Zod, then calls the Rust addon directly. */
import * as native from '#native';
import type { LakeProgressEvent, LakeVerifyReport } from '#native';
import { isLakeError, lakeError } from './errors.js';
import {
  describeIssues,
  LakeExportResultSchema,
  LakeRunSliceExportConfigSchema,
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

  /** Validates `config` (rejecting with `INVALID_CONFIG` before anything native runs), exports and returns
   * the validated result. */
  async exportRunSlices(config: LakeRunSliceExportConfigInput, options: ExportCallOptions = {}): Promise<LakeExportResult> {
    const parsed = LakeRunSliceExportConfigSchema.safeParse(config);
    if (!parsed.success) {
      throw lakeError('INVALID_CONFIG', `invalid run-slice export config: ${describeIssues(parsed.error)}`);
    }
    const cfg = parsed.data;
    const fields = { run_id: cfg.run_id, interval: cfg.interval, window: cfg.window, alerts_path: cfg.alerts_path };
    this.logger.info('lake export started', fields);
    try {
      const raw = await this.native.exportRunSlices(cfg, options);
      const result = LakeExportResultSchema.safeParse(raw);
      if (!result.success) {
        throw lakeError('INTERNAL', `the addon returned an unexpected result: ${describeIssues(result.error)}`);
      }
      this.logger.info('lake export finished', {
        ...fields,
        total_rows: result.data.total_rows,
        total_files: result.data.total_files,
        duration_ms: result.data.duration_ms,
      });
      return result.data;
    } catch (err) {
      const coded = isLakeError(err) ? err : lakeError('INTERNAL', `unexpected failure: ${String(err)}`);
      this.logger.error('lake export failed', { ...fields, code: coded.code, message: coded.message });
      throw coded;
    }
  }

  /** Recomputes a sealed run's hashes, sizes, row counts and seal. */
  async verifyRun(runDir: string): Promise<LakeVerifyReport> {
    return this.native.verifyLakeDir(runDir);
  }
}
