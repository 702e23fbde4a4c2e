/** Helpers for end-to-end export tests: temp lakes, config, reading runs back with DuckDB. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LakeRunSliceExportConfig } from '#native';
import { connection } from './clickhouse.js';
import { duck, dlit } from './duckdb.js';
import type { Candle } from './fixture.js';

// Kept importable from here, where most suites look for them.
export { filesUnder, tempDir } from './files.js';

/** A run-slice config against the fixture table, 1m candles. */
export function runConfig(db: string, dataRoot: string, alertsPath: string, extra: Partial<LakeRunSliceExportConfig> = {}): LakeRunSliceExportConfig {
  return {
    data_root: dataRoot,
    run_id: 'run-1',
    interval: '1m',
    window: 'pre10_post20',
    alerts_path: alertsPath,
    clickhouse: connection(db, 'ohlcv_candles'),
    ...extra,
  };
}

/** Every slice row of a run, read by DuckDB, sorted by (mint, ts), with the bucket from the directory name. */
export async function sliceRows(runDir: string): Promise<Array<Candle & { mint_bucket: string; interval_s: number }>> {
  const rows = await duck(
    `SELECT mint, epoch_ms(ts) AS ts_ms, interval_s, open, high, low, close, volume, mint_bucket ` +
      `FROM read_parquet(${dlit(`${runDir}/slices/**/*.parquet`)}, hive_partitioning = true) ORDER BY mint, ts_ms`,
  );
  return rows.map((r) => ({
    mint: String(r.mint),
    ts_ms: Number(r.ts_ms),
    interval_s: Number(r.interval_s),
    open: Number(r.open),
    high: Number(r.high),
    low: Number(r.low),
    close: Number(r.close),
    volume: Number(r.volume),
    mint_bucket: String(r.mint_bucket),
  }));
}

/** Every candle of one corpus day, read back with DuckDB, sorted by (mint, ts). */
export async function dayRows(dir: string): Promise<Candle[]> {
  const rows = await duck(
    `SELECT mint, epoch_ms(ts) AS ts_ms, open, high, low, close, volume FROM read_parquet(${dlit(`${dir}/mint_bucket=*/*.parquet`)}, ` +
      `hive_partitioning = false) ORDER BY mint, ts_ms`,
  );
  return rows.map((r) => ({
    mint: String(r.mint), ts_ms: Number(r.ts_ms), open: Number(r.open), high: Number(r.high), low: Number(r.low),
    close: Number(r.close), volume: Number(r.volume),
  }));
}

/** One coverage row as DuckDB reads it. */
export interface CoverageRow {
  alert_id: string;
  mint: string;
  anchor_ts_ms: number;
  available_pre: number;
  available_post: number;
  available_total: number;
  first_ts_ms: number | null;
  last_ts_ms: number | null;
  status: string;
  kept: boolean;
}

/** The coverage table in file order. */
export async function coverageRows(path: string): Promise<CoverageRow[]> {
  const rows = await duck(`SELECT * FROM read_parquet(${dlit(path)}, hive_partitioning = false)`);
  return rows.map((r) => ({
    alert_id: String(r.alert_id),
    mint: String(r.mint),
    anchor_ts_ms: Number(r.anchor_ts_ms),
    available_pre: Number(r.available_pre),
    available_post: Number(r.available_post),
    available_total: Number(r.available_total),
    first_ts_ms: r.first_ts_ms === null ? null : Number(r.first_ts_ms),
    last_ts_ms: r.last_ts_ms === null ? null : Number(r.last_ts_ms),
    status: String(r.status),
    kept: Boolean(r.kept),
  }));
}

/** What `<root>/lake/runs` holds (run directories and any hidden debris), lock files aside, sorted. */
export function runsDirEntries(root: string): string[] {
  const dir = join(root, 'lake', 'runs');
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.lock-')).sort() : [];
}
