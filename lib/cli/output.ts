/** Rendering the export summary and verify reports as table, JSON or CSV. */
import type { LakeVerifyReport } from '#native';
import type { LakeCorpusExportResult, LakeCorpusStatus, LakeExportResult } from '../schemas.js';

/** Output formats of the CLI. */
export const FORMATS = ['table', 'json', 'csv'] as const;
/** One output format. */
export type Format = (typeof FORMATS)[number];

/** The original exporter's summary (run id, paths, totals, coverage) plus what the run cost: its duration, the
 * rows read from the source, the duplicate versions dropped and the ClickHouse requests made again, as the corpus
 * summary reports them. */
export function summaryOf(result: LakeExportResult) {
  return {
    run_id: result.manifest.run_id,
    manifest_path: result.manifest_path,
    coverage_path: result.coverage_path,
    total_rows: result.total_rows,
    total_files: result.total_files,
    total_bytes: result.total_bytes,
    rows_fetched: result.rows_fetched,
    duplicates_dropped: result.duplicates_dropped,
    retries: result.retries,
    duration_ms: result.duration_ms,
    coverage: result.manifest.coverage,
  };
}

type Flat = Array<[string, string | number | boolean]>;

function flatten(summary: ReturnType<typeof summaryOf>): Flat {
  const { coverage, ...top } = summary;
  return [...Object.entries(top), ...Object.entries(coverage).map(([k, v]): [string, string | number | boolean] => [`coverage.${k}`, v])];
}

function csvCell(v: string | number | boolean): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The summary in the chosen format, ending with a newline. */
export function renderSummary(summary: ReturnType<typeof summaryOf>, format: Format): string {
  if (format === 'json') return `${JSON.stringify(summary, null, 2)}\n`;
  const rows = flatten(summary);
  if (format === 'csv') return `${rows.map(([k]) => k).join(',')}\n${rows.map(([, v]) => csvCell(v)).join(',')}\n`;
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}

/** A verify report in the chosen format. */
export function renderVerify(report: LakeVerifyReport, format: Format): string {
  if (format === 'json') return `${JSON.stringify(report, null, 2)}\n`;
  if (format === 'csv') {
    return ['kind,path,detail', ...report.problems.map((p) => [p.kind, p.path ?? '', p.detail].map(csvCell).join(','))].join('\n') + '\n';
  }
  if (report.ok) return `ok: ${report.dir} is intact (${report.files_checked} files checked)\n`;
  return (
    `FAILED: ${report.dir} differs from its manifest (${report.problems.length} problems)\n` +
    report.problems.map((p) => `  ${p.kind.padEnd(16)} ${p.path ?? '-'}  ${p.detail}`).join('\n') +
    '\n'
  );
}

/** Rows of records as CSV or an aligned table (columns in `cols` order), ending with a newline. */
function renderRows<T>(records: readonly T[], cols: ReadonlyArray<keyof T & string>, format: 'table' | 'csv', footer: string): string {
  const rows = records.map((d) => cols.map((c) => String(d[c])));
  if (format === 'csv') return [cols.join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\n') + '\n';
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), ...rows.map(line), footer].join('\n') + '\n';
}

/** A corpus export's days in the chosen format. */
export function renderCorpus(result: LakeCorpusExportResult, format: Format): string {
  if (format === 'json') return `${JSON.stringify(result, null, 2)}\n`;
  const cols = ['date', 'status', 'reason', 'refreshed', 'sealed', 'files', 'rows', 'bytes', 'dir', 'detail'] as const;
  // A day refreshed in part says how little was redone; a day exported whole leaves the column empty.
  const days = result.days.map((d) => ({
    ...d,
    refreshed: d.refreshed ? `${d.refreshed.buckets} buckets, ${d.refreshed.mints} mints, ${d.refreshed.files_kept} files kept` : '',
  }));
  return renderRows(days, cols, format, `corpus: ${result.corpus_dir}  rows fetched: ${result.rows_fetched}  retries: ${result.retries}`);
}

/** Where each corpus day stands, in the chosen format. */
export function renderCorpusStatus(status: LakeCorpusStatus, format: Format): string {
  if (format === 'json') return `${JSON.stringify(status, null, 2)}\n`;
  const counts = new Map<string, number>();
  for (const d of status.days) counts.set(d.state, (counts.get(d.state) ?? 0) + 1);
  const summary = [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
  return renderRows(status.days, ['date', 'state', 'detail', 'dir'] as const, format, `corpus: ${status.corpus_dir}  ${summary}`);
}
