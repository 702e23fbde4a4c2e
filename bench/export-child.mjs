// Runs one export in its own process and reports the result with this process's peak RSS (VmHWM) and the time
// until the first candle rows were written (from the progress events).
import { readFileSync } from 'node:fs';
import { exportCorpus, exportRunSlices } from '#native';

const [kind, configJson] = process.argv.slice(2);
const config = JSON.parse(configJson);
const started = process.hrtime.bigint();
let firstRowsMs = null;
const phases = {};
const onProgress = (e) => {
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (firstRowsMs === null && e.rows > 0) firstRowsMs = ms;
  phases[e.phase] ??= Math.round(ms);
};
const result = kind === 'corpus' ? await exportCorpus(config, { onProgress }) : await exportRunSlices(config, { onProgress });
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
const summary =
  kind === 'corpus'
    ? { rows: result.days.reduce((a, d) => a + d.rows, 0), bytes: result.days.reduce((a, d) => a + d.bytes, 0), rows_fetched: result.rows_fetched, refreshed: result.days.find((d) => d.refreshed)?.refreshed, skipped: result.days.every((d) => d.status === 'skipped') }
    : { rows: result.total_rows, bytes: result.total_bytes, rows_fetched: result.rows_fetched, files: result.total_files };
console.log(JSON.stringify({ seconds, peak_rss_mb: hwm ? Number(hwm[1]) / 1024 : null, first_rows_ms: firstRowsMs, phases_ms: phases, ...summary }));
