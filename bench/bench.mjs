// The benchmark behind `npm run bench`: export speed against the raw read floor, writer speed, size and memory.
// Needs CLICKHOUSE_URL (scripts/bench.sh starts a throwaway server) and the release addon.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const ROWS = Number(opt('--rows', '10000000'));
const TOKENS = Number(opt('--tokens', '5000'));
const RUNS = Number(opt('--runs', '3'));
const OUT = opt('--out', 'BENCHMARKS.md');
const PER_TOKEN = Math.ceil(ROWS / TOKENS);
const T0 = 1735689600; // 2025-01-01
const url = new URL(process.env.CLICKHOUSE_URL);
const work = mkdtempSync(join(tmpdir(), 'lake-bench-'));
const log = (...a) => console.error('[bench]', ...a);

async function q(sql) {
  const target = new URL(`/?query=${encodeURIComponent(sql)}`, url);
  // The server closes idle keep-alive connections after 3 s; while spawnSync blocked the event loop, fetch could
  // not notice, so a first failure on a stale connection is retried once on a new one.
  const res = await fetch(target, { method: 'POST' }).catch(() => fetch(target, { method: 'POST' }));
  const text = await res.text();
  if (!res.ok) throw new Error(`${sql.slice(0, 80)}: ${text}`);
  return text;
}

const best = (xs, key) => xs.reduce((a, b) => (b[key] < a[key] ? b : a));

async function load() {
  log(`loading ${ROWS} rows: ${TOKENS} tokens x ${PER_TOKEN} 1m candles (random walk)`);
  await q('DROP DATABASE IF EXISTS bench');
  await q('CREATE DATABASE bench');
  await q(`CREATE TABLE bench.tokens ENGINE = Memory AS SELECT number AS k, arrayStringConcat(arrayMap(i -> substring(
    '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz', (cityHash64(number, i) % 58) + 1, 1), range(44))) AS mint
    FROM system.numbers LIMIT ${TOKENS}`);
  await q(`CREATE TABLE bench.ohlcv_candles (token_address String, chain String, timestamp DateTime, interval_seconds UInt32,
    open Float64, high Float64, low Float64, close Float64, volume Float64, ingested_at DateTime)
    ENGINE = ReplacingMergeTree(ingested_at) ORDER BY (token_address, chain, timestamp, interval_seconds)`);
  const started = Date.now();
  const step = Math.max(1, Math.floor(2_000_000 / PER_TOKEN));
  for (let lo = 0; lo < TOKENS; lo += step) {
    await q(`INSERT INTO bench.ohlcv_candles SELECT mint, 'solana', toDateTime(${T0} + tupleElement(ip, 1) * 60), 60,
      tupleElement(ip, 2) AS p, p * 1.004, p * 0.996, p * (1 + (cityHash64(k, tupleElement(ip, 1)) % 200 - 100) / 50000),
      (cityHash64(tupleElement(ip, 1), k) % 1000000) / 10, toDateTime(${T0})
      FROM (SELECT k, arrayJoin(arrayMap((r, j) -> (j, (0.001 + (k % 97) / 10) * exp(r)), arrayCumSum(arrayMap(x ->
        toFloat64((cityHash64(k, x) % 2001) - 1000) / 100000, range(${PER_TOKEN}))), range(${PER_TOKEN}))) AS ip
        FROM bench.tokens WHERE k >= ${lo} AND k < ${lo + step}) ANY INNER JOIN bench.tokens USING k`);
  }
  await q('OPTIMIZE TABLE bench.ohlcv_candles FINAL');
  const n = Number((await q('SELECT count() FROM bench.ohlcv_candles')).trim());
  log(`loaded ${n} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return n;
}

function floor() {
  const sql = `SELECT token_address, toUInt32(timestamp), open, high, low, close, volume FROM bench.ohlcv_candles FINAL
    WHERE chain = 'solana' AND interval_seconds = 60 ORDER BY token_address, timestamp FORMAT RowBinary`;
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const out = execFileSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{time_total} %{size_download}', url.href, '--data-binary', sql], { encoding: 'utf8' });
    const [seconds, bytes] = out.trim().split(' ').map(Number);
    runs.push({ seconds, bytes });
  }
  return best(runs, 'seconds');
}

function child(kind, config) {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, 'export-child.mjs'), kind, JSON.stringify(config)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${kind} export failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

async function alertsFor(tokens, path) {
  const csv = await q(`SELECT concat('a', toString(k)) AS alert_id, mint, ${T0 + (PER_TOKEN - 1) * 60} AS ts FROM bench.tokens
    WHERE k < ${tokens} ORDER BY k FORMAT CSVWithNames`);
  writeFileSync(path, csv);
}

function exportRuns(alerts, label, concurrency = 4) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    runs.push(child('run', {
      data_root: join(work, label), run_id: 'bench', interval: '1m', window: `pre${PER_TOKEN - 1}_post0`, alerts_path: alerts,
      overwrite: true, concurrency, clickhouse: { host: url.hostname, port: Number(url.port), database: 'bench', table: 'ohlcv_candles', user: 'default' },
    }));
  }
  return best(runs, 'seconds');
}

function writerBench() {
  const bin = 'target/x86_64-unknown-linux-gnu/release/examples/writer_bench';
  const one = JSON.parse(execFileSync(bin, ['--rows', String(ROWS), '--tokens', String(TOKENS), '--threads', '1'], { encoding: 'utf8' }));
  const two = JSON.parse(execFileSync(bin, ['--rows', String(ROWS), '--tokens', String(TOKENS), '--threads', '2'], { encoding: 'utf8' }));
  return { one, two };
}

const rows = await load();
log('floor: RowBinary over HTTP to /dev/null');
const fl = floor();
const allAlerts = join(work, 'alerts-all.csv');
await alertsFor(TOKENS, allAlerts);
log('exportRunSlices, all tokens, concurrency 4 and 1');
const ex = exportRuns(allAlerts, 'all');
const ex1 = exportRuns(allAlerts, 'all', 1);
const smallTokens = Math.max(1, Math.round(1_000_000 / PER_TOKEN));
const smallAlerts = join(work, 'alerts-1m.csv');
await alertsFor(smallTokens, smallAlerts);
log(`exportRunSlices, ${smallTokens} tokens (about 1M rows)`);
const exSmall = exportRuns(smallAlerts, 'small');
log('exportCorpus');
const days = Math.ceil((PER_TOKEN * 60) / 86400);
const dateTo = new Date((T0 + days * 86400) * 1000).toISOString().slice(0, 10);
const corpus = best(
  Array.from({ length: RUNS }, (_, i) =>
    child('corpus', {
      data_root: join(work, `corpus-${i}`), interval: '1m', date_from: '2025-01-01', date_to: dateTo,
      clickhouse: { host: url.hostname, port: Number(url.port), database: 'bench', table: 'ohlcv_candles', user: 'default' },
    }),
  ),
  'seconds',
);
log('writer alone');
const wr = writerBench();

const version = (cmd, a) => { try { return execFileSync(cmd, a, { encoding: 'utf8' }).trim().split('\n')[0]; } catch { return 'n/a'; } };
const chVersion = (await q('SELECT version()')).trim();
const fmt = (n, d = 2) => Number(n).toFixed(d);
const floorRps = rows / fl.seconds;
const table = `
| measure | value |
|---|---|
| rows in the table | ${rows.toLocaleString('en-US')} (${TOKENS} tokens x ${PER_TOKEN} 1m candles) |
| floor: RowBinary of the same rows over HTTP to /dev/null (best of ${RUNS}) | ${fmt(fl.seconds)} s, ${fmt(floorRps / 1e6)} M rows/s |
| exportRunSlices, zstd, concurrency 4 (best of ${RUNS}) | ${fmt(ex.seconds)} s, ${fmt(ex.rows / ex.seconds / 1e6)} M rows/s |
| exportRunSlices, concurrency 1 (one stream) | ${fmt(ex1.seconds)} s, ${fmt(ex1.rows / ex1.seconds / 1e6)} M rows/s |
| export / floor (rows/s), concurrency 4 / 1 | ${fmt(ex.rows / ex.seconds / floorRps)}x / ${fmt(ex1.rows / ex1.seconds / floorRps)}x (target >= 0.8x) |
| exportCorpus, ${days} days (best of ${RUNS}) | ${fmt(corpus.seconds)} s, ${fmt(corpus.rows / corpus.seconds / 1e6)} M rows/s |
| writer alone, ${wr.one.rows.toLocaleString('en-US')} rows -> 256 buckets, 1 thread / 2 threads | ${fmt(wr.one.seconds)} s / ${fmt(wr.two.seconds)} s (Polars sink measured here: ~1.8 s) |
| output bytes per row (export / writer bench) | ${fmt(ex.bytes / ex.rows)} / ${fmt(wr.one.bytes_per_row)} (target <= 31) |
| peak RSS of the exporting process, ${exSmall.rows.toLocaleString('en-US')} rows / ${ex.rows.toLocaleString('en-US')} rows | ${fmt(exSmall.peak_rss_mb, 0)} MiB / ${fmt(ex.peak_rss_mb, 0)} MiB (target <= 256, flat) |
| fetch amplification (rows fetched / rows written) | ${fmt(ex.rows_fetched / ex.rows, 3)} |
| slice files | ${ex.files} |

Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${fmt(totalmem() / 2 ** 30, 0)} GiB; ${version('uname', ['-sr'])};
Node ${process.version}; ${version('rustc', ['--version'])}; ClickHouse ${chVersion}.
`;
console.log(table);
const path = OUT;
let doc = '';
try { doc = readFileSync(path, 'utf8'); } catch { /* new file */ }
const marker = '<!-- bench:results -->';
const stamp = `Last run: \`npm run bench -- --rows ${ROWS}\` on ${new Date().toISOString().slice(0, 10)}.\n`;
if (doc.includes(marker)) {
  const [head, rest] = doc.split(marker);
  const tail = rest.includes('<!-- /bench:results -->') ? rest.slice(rest.indexOf('<!-- /bench:results -->')) : '<!-- /bench:results -->\n';
  writeFileSync(path, `${head}${marker}\n${stamp}${table}\n${tail}`);
} else {
  writeFileSync(path, `# Benchmarks\n\n${marker}\n${stamp}${table}\n<!-- /bench:results -->\n`);
}
rmSync(work, { recursive: true, force: true });
await q('DROP DATABASE IF EXISTS bench');
