// The benchmark behind `npm run bench`: export speed against the cheapest read of the same rows, in two modes
// (server and client sharing both cores; server on CPU 0 and every client on CPU 1, as on two machines), the
// server's own cost per query, writer speed, size and memory; `--scale` runs the large-table run instead.
// Needs CLICKHOUSE_URL / CLICKHOUSE_PID (scripts/bench.sh starts a throwaway server) and the release addon.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const SCALE = args.includes('--scale');
const FRESHNESS = args.includes('--freshness');
const OBJECT_STORE = args.includes('--object-store');
const REFRESH = args.includes('--refresh');
const ROWS = Number(opt('--rows', SCALE ? '100000000' : '10000000'));
// The refresh benchmark wants one day: a whole day of 1m candles per token.
const TOKENS = Number(opt('--tokens', REFRESH ? String(Math.ceil(ROWS / 1440)) : '5000'));
const RUNS = Number(opt('--runs', SCALE ? '1' : '3'));
const MODES = args.includes('--pin') ? ['pinned'] : args.includes('--no-pin') ? ['shared'] : ['shared', 'pinned'];
const OUT = opt('--out', 'BENCHMARKS.md');
const LINK_MBPS = Number(opt('--link-mbps', '20'));
const PER_TOKEN = Math.ceil(ROWS / TOKENS);
const T0 = 1735689600; // 2025-01-01
const url = new URL(process.env.CLICKHOUSE_URL);
const SERVER_PID = Number(process.env.CLICKHOUSE_PID);
const work = mkdtempSync(join(tmpdir(), 'lake-bench-'));
const sleep = (ms) => new Promise((r) => globalThis.setTimeout(r, ms));
const log = (...a) => console.error('[bench]', ...a);
let pinned = false;

async function q(sql, settings = '') {
  const target = new URL(`/?query=${encodeURIComponent(sql)}${settings}`, url);
  // The server closes idle keep-alive connections after 3 s; while spawnSync blocked the event loop, fetch could
  // not notice, so a first failure on a stale connection is retried once on a new one.
  const res = await fetch(target, { method: 'POST' }).catch(() => fetch(target, { method: 'POST' }));
  const text = await res.text();
  if (!res.ok) throw new Error(`${sql.slice(0, 80)}: ${text}`);
  return text;
}

/** Server on CPU 0 and clients on CPU 1, or both free. */
function pin(on) {
  execFileSync('taskset', ['-a', '-pc', on ? '0' : '0-' + (cpus().length - 1), String(SERVER_PID)], { stdio: 'ignore' });
  pinned = on;
}
const client = (cmd, argv) => (pinned ? ['taskset', ['-c', '1', cmd, ...argv]] : [cmd, argv]);

const best = (xs, key) => xs.reduce((a, b) => (b[key] < a[key] ? b : a));

async function load() {
  log(`loading ${ROWS} rows: ${TOKENS} tokens x ${PER_TOKEN} 1m candles (random walk)`);
  const unlimited = '&max_memory_usage=0';
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
        FROM bench.tokens WHERE k >= ${lo} AND k < ${lo + step}) ANY INNER JOIN bench.tokens USING k`, unlimited);
  }
  await q('OPTIMIZE TABLE bench.ohlcv_candles FINAL', unlimited);
  const n = Number((await q('SELECT count() FROM bench.ohlcv_candles')).trim());
  log(`loaded ${n} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return n;
}

const sqlString = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The server's peak memory over the queries whose text contains `marker`, since `sinceS` (epoch seconds). */
async function serverMemory(marker, sinceS) {
  await q('SYSTEM FLUSH LOGS');
  const text = await q(`SELECT max(memory_usage), count() FROM system.query_log WHERE type = 2 AND event_time >= toDateTime(${sinceS})
    AND position(query, ${sqlString(marker)}) > 0 FORMAT TSV`);
  const [bytes, queries] = text.trim().split('\t').map(Number);
  return { mib: bytes / 2 ** 20, queries };
}

const SELECT_LIST = 'token_address, toUInt32(timestamp), open, high, low, close, volume';
const SHAPES = {
  floor: `SELECT ${SELECT_LIST} FROM bench.ohlcv_candles FINAL WHERE chain = 'solana' AND interval_seconds = 60 FORMAT Native`,
  orderByKey: `SELECT ${SELECT_LIST} FROM bench.ohlcv_candles FINAL WHERE chain = 'solana' AND interval_seconds = 60
    ORDER BY token_address, timestamp FORMAT RowBinary`,
  orderBySha1: `SELECT ${SELECT_LIST} FROM bench.ohlcv_candles FINAL WHERE chain = 'solana' AND interval_seconds = 60
    ORDER BY substring(SHA1(token_address), 1, 1), token_address, timestamp FORMAT RowBinary`,
  // The corpus freshness check of every day the table holds: the query source/clickhouse/fingerprint.rs sends
  // (one line per day and mint; the client sums them per bucket).
  fingerprint: `SELECT q_day, hex(q_mint), q_n, q_v, lower(hex(cityHash64(q_mint, q_n, q_v)))
    FROM (SELECT intDiv(toUInt32(timestamp), 86400) AS q_day, token_address AS q_mint, count() AS q_n,
    toString(max(\`ingested_at\`)) AS q_v FROM bench.ohlcv_candles FINAL
    WHERE chain = 'solana' AND interval_seconds = 60 AND timestamp >= toDateTime(${T0})
    AND timestamp < toDateTime(${T0 + 31 * 86400}) GROUP BY q_day, q_mint) FORMAT TabSeparated`,
  // The same numbers without FINAL (distinct times), how sealed days of a ReplacingMergeTree on its version are
  // checked (TableSchema::final_is_distinct_keys).
  fingerprintDistinct: `SELECT q_day, hex(q_mint), q_n, q_v, lower(hex(cityHash64(q_mint, q_n, q_v)))
    FROM (SELECT intDiv(toUInt32(timestamp), 86400) AS q_day, token_address AS q_mint, uniqExact(timestamp) AS q_n,
    toString(max(\`ingested_at\`)) AS q_v FROM bench.ohlcv_candles
    WHERE chain = 'solana' AND interval_seconds = 60 AND timestamp >= toDateTime(${T0})
    AND timestamp < toDateTime(${T0 + 31 * 86400}) GROUP BY q_day, q_mint) FORMAT TabSeparated`,
};

/** A query shape streamed by curl to /dev/null, best of `runs`, with the server's peak memory; `unlimited` lifts
 * the server's per-query memory limit (the sorted shapes need more than 1 GiB for 10M rows). */
/**
 * Writes every earlier run's files to disk before the next measurement. Outputs are kept until the benchmark ends
 * (see `corpusRuns`), and their write-back would otherwise run during later exports: with gigabytes dirty, the
 * bucket files' fsync at the end of an export waited behind it (closing them took 0.97 s instead of 0.3 s).
 */
function settle() {
  execFileSync('sync');
}

async function curlShape(name, runs = RUNS, unlimited = false) {
  const out = [];
  for (let i = 0; i < runs; i++) {
    settle();
    const since = Math.floor(Date.now() / 1000);
    const target = unlimited ? `${url.href}?max_memory_usage=0` : url.href;
    const [cmd, argv] = client('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{time_starttransfer} %{time_total} %{size_download}',
      target, '--data-binary', SHAPES[name]]);
    const [status, first, seconds, bytes] = execFileSync(cmd, argv, { encoding: 'utf8' }).trim().split(' ').map(Number);
    if (status !== 200) throw new Error(`${name}: HTTP ${status}`);
    const mem = await serverMemory(SHAPES[name].slice(-60), since);
    out.push({ first, seconds, bytes, memMib: mem.mib });
  }
  return best(out, 'seconds');
}

/** True when a query shape fails under the server's own per-query memory limit. */
function failsUnderLimit(name) {
  const [cmd, argv] = client('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', url.href, '--data-binary', SHAPES[name]]);
  return execFileSync(cmd, argv, { encoding: 'utf8' }).trim() !== '200';
}

function child(kind, config, env = {}) {
  settle();
  const [cmd, argv] = client(process.execPath, [join(import.meta.dirname, 'export-child.mjs'), kind, JSON.stringify(config)]);
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${kind} export failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

async function alertsFor(tokens, path) {
  const csv = await q(`SELECT concat('a', toString(k)) AS alert_id, mint, ${T0 + (PER_TOKEN - 1) * 60} AS ts FROM bench.tokens
    WHERE k < ${tokens} ORDER BY k FORMAT CSVWithNames`);
  writeFileSync(path, csv);
}

const ch = { host: url.hostname, port: Number(url.port), database: 'bench', table: 'ohlcv_candles', user: 'default' };

async function exportRuns(alerts, label, { concurrency, runs = RUNS } = {}) {
  const out = [];
  for (let i = 0; i < runs; i++) {
    const since = Math.floor(Date.now() / 1000);
    // A fresh lake each time: an overwrite would also time the removal of the previous run.
    const root = join(work, `${label}-${i}`);
    const r = child('run', {
      data_root: root, run_id: 'bench', interval: '1m', window: `pre${PER_TOKEN - 1}_post0`, alerts_path: alerts,
      ...(concurrency ? { concurrency } : {}), clickhouse: ch,
    });
    const mem = await serverMemory('q_mint', since);
    out.push({ ...r, root, memMib: mem.mib, queries: mem.queries });
  }
  // Nothing is removed until the benchmark ends: see `corpusRuns`.
  return best(out, 'seconds');
}

async function corpusRuns(label, runs = RUNS) {
  const days = Math.ceil((PER_TOKEN * 60) / 86400);
  const dateTo = new Date((T0 + days * 86400) * 1000).toISOString().slice(0, 10);
  const out = [];
  for (let i = 0; i < runs; i++) {
    // Each run writes into a new directory and nothing is removed until the benchmark ends. This file system
    // (ext4 without a journal) will not reuse an inode for 30 s after its file is deleted. It scans past each
    // such inode when creating a file, and removing the last run's 512 files and directories right before
    // added up to 0.3 s to the next export.
    const since = Math.floor(Date.now() / 1000);
    const r = child('corpus', { data_root: join(work, `${label}-${i}`), interval: '1m', date_from: '2025-01-01', date_to: dateTo, clickhouse: ch });
    const mem = await serverMemory('q_mint', since);
    out.push({ ...r, days, memMib: mem.mib, queries: mem.queries });
  }
  return best(out, 'seconds');
}

/** SHA-256 of every slice file of a run, by path. */
function sliceHashes(root) {
  const out = {};
  const walk = (dir, rel) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p, `${rel}${name}/`);
      else if (name.endsWith('.parquet')) out[`${rel}${name}`] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(join(root, 'lake', 'runs', 'run_id=bench', 'slices'), '');
  return out;
}

function writerBench() {
  const bin = 'target/x86_64-unknown-linux-gnu/release/examples/writer_bench';
  const [cmd, argv] = client(bin, ['--rows', String(ROWS), '--tokens', String(TOKENS)]);
  return JSON.parse(execFileSync(cmd, argv, { encoding: 'utf8' }));
}

const fmt = (n, d = 2) => Number(n).toFixed(d);
/** Seconds spent in each phase of an export, from its progress events. */
const phaseSplit = (r) => {
  const p = r.phases_ms ?? {};
  const at = (name, dflt) => (p[name] ?? dflt) / 1000;
  const [a, b, c, d] = [at('exporting', 0), at('finishing', 0), at('sealing', 0), r.seconds];
  return `${fmt(a)} s / ${fmt(b - a)} s / ${fmt(c - b)} s / ${fmt(d - c)} s`;
};
const mrps = (rows, s) => `${fmt(rows / s / 1e6)} M rows/s`;
const version = (cmd, a) => {
  try {
    return execFileSync(cmd, a, { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return 'n/a';
  }
};

async function machine() {
  const chVersion = (await q('SELECT version()')).trim();
  return `Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${fmt(totalmem() / 2 ** 30, 0)} GiB; ${version('uname', ['-sr'])};
Node ${process.version}; ${version('rustc', ['--version'])}; ClickHouse ${chVersion} (max_memory_usage ${
    (await q("SELECT value FROM system.settings WHERE name = 'max_memory_usage'")).trim()} per query).`;
}

function writeSection(marker, text) {
  let doc;
  try {
    doc = readFileSync(OUT, 'utf8');
  } catch {
    doc = '# Benchmarks\n';
  }
  const open = `<!-- bench:${marker} -->`;
  const close = `<!-- /bench:${marker} -->`;
  const block = `${open}\n${text}\n${close}`;
  if (doc.includes(open) && doc.includes(close)) {
    doc = doc.slice(0, doc.indexOf(open)) + block + doc.slice(doc.indexOf(close) + close.length);
  } else {
    doc = `${doc.trimEnd()}\n\n${block}\n`;
  }
  writeFileSync(OUT, doc);
}

async function mainRun() {
  const rows = await load();
  const allAlerts = join(work, 'alerts-all.csv');
  await alertsFor(TOKENS, allAlerts);
  const sections = [];
  let detSame = null;
  for (const mode of MODES) {
    pin(mode === 'pinned');
    // Rounds of one floor, one export of each kind: this machine's speed drifts by 10-20% within minutes, and
    // measuring the floor first and the exports after counted that drift in their ratio.
    const round = { floor: [], ex: [], ex1: [], corpus: [] };
    for (let i = 0; i < RUNS; i++) {
      log(`${mode}: round ${i + 1}/${RUNS}: floor, exportRunSlices (default concurrency, then 1), exportCorpus`);
      round.floor.push(await curlShape('floor', 1));
      round.ex.push(await exportRuns(allAlerts, `all-${mode}-${i}`, { runs: 1 }));
      round.ex1.push(await exportRuns(allAlerts, `one-${mode}-${i}`, { concurrency: 1, runs: 1 }));
      round.corpus.push(await corpusRuns(`corpus-${mode}-${i}`, 1));
    }
    const [floor, ex, ex1, corpus] = ['floor', 'ex', 'ex1', 'corpus'].map((k) => best(round[k], 'seconds'));
    log(`${mode}: reference query shapes`);
    const byKey = await curlShape('orderByKey', Math.min(RUNS, 2), true);
    const bySha1 = await curlShape('orderBySha1', Math.min(RUNS, 2), true);
    const sortedFail = [failsUnderLimit('orderByKey'), failsUnderLimit('orderBySha1')].map((f) => (f ? 'fails' : 'passes'));
    if (detSame === null) {
      const ex4 = await exportRuns(allAlerts, `four-${mode}`, { concurrency: 4, runs: 1 });
      detSame = JSON.stringify(sliceHashes(ex1.root)) === JSON.stringify(sliceHashes(ex4.root)) && ex4.files === ex1.files;
    }
    pin(false);
    const rate = (r) => r.rows / r.seconds;
    sections.push(`### ${mode === 'pinned' ? 'Pinned: server on CPU 0, every client on CPU 1 (two machines, emulated)' : 'Shared: server and clients on both cores'}

| measure | value |
|---|---|
| floor: \`FINAL\`, no \`ORDER BY\`, Native, of exactly the exported rows, curl to /dev/null (best of ${RUNS}) | ${fmt(floor.seconds)} s, ${mrps(rows, floor.seconds)}, server peak ${fmt(floor.memMib, 0)} MiB |
| exportRunSlices, default concurrency (best of ${RUNS}) | ${fmt(ex.seconds)} s, ${mrps(ex.rows, ex.seconds)}, first rows after ${fmt(ex.first_rows_ms / 1000)} s, ${ex.queries} queries, server peak ${fmt(ex.memMib, 0)} MiB/query |
| exportRunSlices, concurrency 1 | ${fmt(ex1.seconds)} s, ${mrps(ex1.rows, ex1.seconds)} |
| **export / floor** (rows/s), default / concurrency 1 | **${fmt(rate(ex) / (rows / floor.seconds))}x** / ${fmt(rate(ex1) / (rows / floor.seconds))}x (target >= 0.8x) |
| exportCorpus, ${corpus.days} days (best of ${RUNS}) | ${fmt(corpus.seconds)} s, ${mrps(corpus.rows, corpus.seconds)}, **${fmt(rate(corpus) / (rows / floor.seconds))}x** the floor, server peak ${fmt(corpus.memMib, 0)} MiB/query |
| for reference, with the memory limit lifted (under it: ${sortedFail.join(' / ')}): the same rows \`ORDER BY token_address, timestamp\` (the old floor) / \`ORDER BY substring(SHA1(…)), …\` (the old export's shape) | ${fmt(byKey.seconds)} s (first byte ${fmt(byKey.first)} s, server ${fmt(byKey.memMib, 0)} MiB) / ${fmt(bySha1.seconds)} s (first byte ${fmt(bySha1.first)} s, server ${fmt(bySha1.memMib, 0)} MiB) |
| where the export's time went (best run): start-up / fetch and write / closing the bucket files / coverage, manifest, publish | ${phaseSplit(ex)} |
| peak RSS of the exporting process / output bytes per row / fetch amplification | ${fmt(ex.peak_rss_mb, 0)} MiB / ${fmt(ex.bytes / ex.rows)} / ${fmt(ex.rows_fetched / ex.rows, 3)} |`);
  }
  log('exportRunSlices on about 1M rows (RSS at a tenth of the size)');
  const smallTokens = Math.max(1, Math.round(1_000_000 / PER_TOKEN));
  const smallAlerts = join(work, 'alerts-1m.csv');
  await alertsFor(smallTokens, smallAlerts);
  const small = await exportRuns(smallAlerts, 'small', { runs: 1 });
  log('writer alone');
  const wr = writerBench();
  const stamp = `Last run: \`npm run bench -- --rows ${ROWS}\` on ${new Date().toISOString().slice(0, 10)}; ${fmt(rows / 1e6, 0)}M rows in the table (${TOKENS} tokens x ${PER_TOKEN} 1m candles), one alert per token whose window covers all its candles; best of ${RUNS} rounds, each measuring the floor and every export once.`;
  const text = `${stamp}

${sections.join('\n\n')}

| measure (both modes) | value |
|---|---|
| slice files byte-identical at concurrency 1 and 4 | ${detSame ? 'yes' : '**no**'} |
| peak RSS of the exporting process, ${fmt(small.rows / 1e6, 1)}M rows / ${fmt(rows / 1e6, 0)}M rows | ${fmt(small.peak_rss_mb, 0)} MiB / see above (target <= 256, flat) |
| writer alone: ${fmt(wr.rows / 1e6, 0)}M rows handed over in mint order into 256 open buckets, one thread | ${fmt(wr.seconds)} s, ${fmt(wr.bytes_per_row)} bytes/row, peak RSS ${wr.peak_rss_mib} MiB |

${await machine()}`;
  console.log(text);
  writeSection('results', text);
}

async function scaleRun() {
  const rows = await load();
  const allAlerts = join(work, 'alerts-all.csv');
  await alertsFor(TOKENS, allAlerts);
  log('scale: floor');
  const floor = await curlShape('floor', 1);
  const lines = [];
  for (const share of [0.01, 0.1, 1]) {
    const tokens = Math.max(1, Math.round(TOKENS * share));
    const alerts = join(work, `alerts-${tokens}.csv`);
    await alertsFor(tokens, alerts);
    log(`scale: exportRunSlices of ${tokens} tokens`);
    const r = await exportRuns(alerts, `scale-${tokens}`, { runs: 1 });
    lines.push(`| exportRunSlices, ${fmt(r.rows / 1e6, 0)}M rows (${tokens} tokens) | ${fmt(r.seconds)} s, ${mrps(r.rows, r.seconds)}, first rows after ${fmt(r.first_rows_ms / 1000)} s | ${r.queries} queries, peak ${fmt(r.memMib, 0)} MiB/query | ${fmt(r.peak_rss_mb, 0)} MiB | ${fmt(r.bytes / r.rows)} |`);
    rmSync(r.root, { recursive: true, force: true });
  }
  log('scale: exportCorpus');
  const corpus = await corpusRuns('scale-corpus', 1);
  rmSync(join(work, 'scale-corpus-0'), { recursive: true, force: true });
  const stamp = `Last run: \`npm run bench -- --scale --rows ${ROWS}\` on ${new Date().toISOString().slice(0, 10)}; ${fmt(rows / 1e6, 0)}M rows (${TOKENS} tokens x ${PER_TOKEN} 1m candles), server and client sharing both cores, one run each.`;
  const text = `${stamp}

| run | time, rate, time to first rows | server (system.query_log) | peak RSS (exporter) | bytes/row |
|---|---|---|---|---|
| floor: \`FINAL\`, no \`ORDER BY\`, Native, curl | ${fmt(floor.seconds)} s, ${mrps(rows, floor.seconds)}, first byte ${fmt(floor.first)} s | peak ${fmt(floor.memMib, 0)} MiB | — | — |
${lines.join('\n')}
| exportCorpus, ${corpus.days} days | ${fmt(corpus.seconds)} s, ${mrps(corpus.rows, corpus.seconds)} (${fmt(corpus.rows / corpus.seconds / (rows / floor.seconds))}x the floor) | ${corpus.queries} queries, peak ${fmt(corpus.memMib, 0)} MiB/query | ${fmt(corpus.peak_rss_mb, 0)} MiB | ${fmt(corpus.bytes / corpus.rows)} |

${await machine()}`;
  console.log(text);
  writeSection('scale', text);
}

/** What checking a corpus's freshness costs the server, against the export's own read of the same rows. */
async function freshnessRun() {
  const rows = await load();
  const lines = [];
  for (const mode of MODES) {
    pin(mode === 'pinned');
    log(`${mode}: floor and fingerprint query`);
    const floor = await curlShape('floor');
    const fp = await curlShape('fingerprint');
    const fpd = await curlShape('fingerprintDistinct');
    pin(false);
    lines.push(`| ${mode === 'pinned' ? 'pinned (server on CPU 0, curl on CPU 1)' : 'shared'} | ${fmt(floor.seconds)} s, server peak ${fmt(floor.memMib, 0)} MiB | ${fmt(fp.seconds)} s, server peak ${fmt(fp.memMib, 0)} MiB, ${fp.bytes} bytes of answer | **${fmt(fp.seconds / floor.seconds)}x** | ${fmt(fpd.seconds)} s, server peak ${fmt(fpd.memMib, 0)} MiB: **${fmt(fpd.seconds / floor.seconds)}x** |`);
  }
  const stamp = `Last run: \`npm run bench -- --freshness --rows ${ROWS}\` on ${new Date().toISOString().slice(0, 10)}; ${fmt(rows / 1e6, 0)}M rows (${TOKENS} tokens x ${PER_TOKEN} 1m candles, ${Math.ceil((PER_TOKEN * 60) / 86400)} days), best of ${RUNS}.`;
  const text = `${stamp}

| mode | floor: the export's read of every row (\`FINAL\`, Native, curl) | fingerprint of every day under \`FINAL\` (new days, unknown sizes) | fingerprint / floor (time) | without \`FINAL\`, distinct times (sealed days: what a re-run and \`corpus-status\` ask) |
|---|---|---|---|---|
${lines.join('\n')}

${await machine()}`;
  console.log(text);
  writeSection('freshness', text);
}

/** Total bytes of the files under a directory. */
function treeBytes(dir) {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  return total;
}

/**
 * The same exports to a local directory and to an S3 server (moto on loopback, started here) behind a link of
 * LINK_MBPS (a throttling proxy, bench/throttle-proxy.mjs, as a real network to S3 would be), each day uploaded
 * after it is exported (serial, `QUANTBOT_LAKE_UPLOAD=serial`) and while the next one is (overlapped, the
 * default), alternating, best of RUNS each. The run's bytes, requests and the exporter's memory are the
 * exporter's; the link's rate is the proxy's.
 */
async function objectStoreRun() {
  const rows = await load();
  const alerts = join(work, 'alerts-os.csv');
  await alertsFor(TOKENS, alerts);
  const s3 = Object.fromEntries(
    execFileSync('bash', ['scripts/s3-server.sh', 'start'], { encoding: 'utf8' })
      .trim().split('\n').map((l) => l.replace(/^export /, '').split('=')).map(([k, ...v]) => [k, v.join('=')]),
  );
  Object.assign(process.env, s3);
  const link = spawn(process.execPath, [join(import.meta.dirname, 'throttle-proxy.mjs'), new URL(s3.AWS_ENDPOINT_URL).host, String(LINK_MBPS * 1e6)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const linkPort = await new Promise((res) => link.stdout.once('data', (d) => res(Number(String(d).trim()))));
  const endpoint = `http://127.0.0.1:${linkPort}`;
  const kinds = {
    local: { env: {}, root: (mode, i) => join(work, `os-local-${mode}-${i}`) },
    serial: { env: { QUANTBOT_LAKE_UPLOAD: 'serial' }, root: (mode, i) => `s3://${s3.S3_TEST_BUCKET}/bench-serial-${mode}-${i}` },
    overlapped: { env: {}, root: (mode, i) => `s3://${s3.S3_TEST_BUCKET}/bench-overlapped-${mode}-${i}` },
  };
  const lines = [];
  const days = Math.ceil((PER_TOKEN * 60) / 86400);
  try {
    for (const mode of MODES) {
      pin(mode === 'pinned');
      const runs = { local: [], serial: [], overlapped: [] };
      const corpora = { local: [], serial: [], overlapped: [] };
      const dateTo = new Date((T0 + days * 86400) * 1000).toISOString().slice(0, 10);
      for (let i = 0; i < RUNS; i++) {
        for (const [kind, { env, root: rootOf }] of Object.entries(kinds)) {
          const root = rootOf(mode, i);
          const store = kind === 'local' ? {} : { object_store: { endpoint } };
          log(`${mode}: run slices and corpus to ${kind} (${i + 1}/${RUNS})`);
          const r = child('run', { data_root: root, run_id: 'bench', interval: '1m', window: `pre${PER_TOKEN - 1}_post0`, alerts_path: alerts, clickhouse: ch, ...store }, env);
          const sealing = (r.phases_ms.done ?? 0) - (r.phases_ms.sealing ?? 0);
          runs[kind].push({ ...r, root, sealing });
          const c = child('corpus', { data_root: root, interval: '1m', date_from: '2025-01-01', date_to: dateTo, clickhouse: ch, ...store }, env);
          corpora[kind].push({ ...c, root });
        }
      }
      pin(false);
      const label = mode === 'pinned' ? 'pinned' : 'shared';
      const [l, s, o] = ['local', 'serial', 'overlapped'].map((k) => best(runs[k], 'seconds'));
      const bytes = treeBytes(join(l.root, 'lake/runs/run_id=bench'));
      lines.push(`| ${label} | run slices (${fmt(bytes / 2 ** 20, 1)} MiB in ${l.files + 2} objects) | ${fmt(l.seconds)} s, ${fmt(l.peak_rss_mb, 0)} MiB | ${fmt(s.seconds)} s (sealing + upload ${fmt(s.sealing / 1000)} s), ${fmt(s.peak_rss_mb, 0)} MiB | ${fmt(o.seconds)} s, ${fmt(o.peak_rss_mb, 0)} MiB | ${fmt(s.seconds / l.seconds)}x / **${fmt(o.seconds / l.seconds)}x** |`);
      const [lc, sc, oc] = ['local', 'serial', 'overlapped'].map((k) => best(corpora[k], 'seconds'));
      const corpusBytes = treeBytes(join(lc.root, 'lake/corpus'));
      lines.push(`| ${label} | corpus, ${days} days (${fmt(corpusBytes / 2 ** 20, 1)} MiB) | ${fmt(lc.seconds)} s, ${fmt(lc.peak_rss_mb, 0)} MiB | ${fmt(sc.seconds)} s, ${fmt(sc.peak_rss_mb, 0)} MiB | ${fmt(oc.seconds)} s, ${fmt(oc.peak_rss_mb, 0)} MiB | ${fmt(sc.seconds / lc.seconds)}x / **${fmt(oc.seconds / lc.seconds)}x** |`);
      for (const r of [...runs.local, ...corpora.local]) rmSync(r.root, { recursive: true, force: true });
    }
  } finally {
    link.kill();
    execFileSync('bash', ['scripts/s3-server.sh', 'stop', s3.S3_TEST_DIR]);
  }
  const stamp = `Last run: \`npm run bench -- --object-store --rows ${ROWS} --tokens ${TOKENS} --link-mbps ${LINK_MBPS}\` on ${new Date().toISOString().slice(0, 10)}; ${fmt(rows / 1e6, 2)}M rows (${TOKENS} tokens x ${PER_TOKEN} 1m candles), run slices of every token and the corpus of every day, best of ${RUNS}, the three kinds alternating; S3 is moto on loopback behind a ${LINK_MBPS} MB/s link (bench/throttle-proxy.mjs).`;
  const text = `${stamp}

| mode | export | to a local directory | to \`s3://\`, serial upload | to \`s3://\`, overlapped upload | S3 / local: serial / **overlapped** |
|---|---|---|---|---|---|
${lines.join('\n')}

${await machine()}`;
  console.log(text);
  writeSection('object-store', text);
}

/** What the server read for the exporter's queries since `sinceS`: the fingerprint queries and the fetches apart
 * (rows, MiB, server milliseconds). */
async function serverRead(sinceS) {
  await q('SYSTEM FLUSH LOGS');
  // The check that a day changed: fingerprint queries and scans of new data parts.
  const text = await q(`SELECT position(query, 'cityHash64') > 0 OR position(query, '_part IN') > 0 AS fp, sum(read_rows), sum(read_bytes), sum(query_duration_ms)
    FROM system.query_log WHERE type = 2 AND event_time >= toDateTime(${sinceS}) AND position(query, 'ohlcv_candles') > 0
    AND position(query, 'query_log') = 0 AND position(query, 'INSERT') = 0 GROUP BY fp FORMAT TSV`);
  const out = { fp: { rows: 0, mib: 0, ms: 0 }, fetch: { rows: 0, mib: 0, ms: 0 } };
  for (const line of text.trim().split('\n').filter(Boolean)) {
    const [fp, rows, bytes, ms] = line.split('\t').map(Number);
    out[fp ? 'fp' : 'fetch'] = { rows, mib: bytes / 2 ** 20, ms };
  }
  return out;
}

/**
 * A stale corpus day refreshed against the same day exported from scratch, on the same server state, alternating,
 * best of RUNS: after corrected candles for 1% of the mints (a partial refresh: only their buckets are rebuilt,
 * only they are fetched), and after corrected candles for every mint (the indexer catching up: the day is
 * exported whole). Each refresh starts from a copy of the day as first sealed.
 */
/** `run()` after every earlier write is on disk (the copy a refresh starts from would otherwise be flushed during
 * it), with what the server read for it. */
async function timed(run) {
  execFileSync('sync');
  await sleep(1100);
  const since = Math.floor(Date.now() / 1000);
  const r = run();
  return { ...r, read: await serverRead(since) };
}

async function refreshRun() {
  // An even count, so that each of the two goes first as often as the other.
  const PAIRS = RUNS + (RUNS % 2);
  const rows = await load();
  const day = { interval: '1m', date_from: '2025-01-01', date_to: '2025-01-02', clickhouse: ch };
  const sealed = join(work, 'refresh-sealed');
  child('corpus', { ...day, data_root: sealed });
  const changes = [
    ['nothing (a re-run)', null],
    ['corrected candles for 1% of the mints (10 each)', 'k % 100 = 0'],
    ['corrected candles for every mint (10 each)', '1'],
  ];
  const lines = [];
  let version = T0;
  for (const [what, where] of changes) {
    version += 3600;
    if (where) await q(`INSERT INTO bench.ohlcv_candles SELECT token_address, chain, timestamp, interval_seconds, open, high, low, close * 1.01,
      volume, toDateTime(${version}) FROM bench.ohlcv_candles FINAL WHERE token_address IN (SELECT mint FROM bench.tokens WHERE ${where})
      AND toUInt32(timestamp) % 8640 < 60 AND timestamp < toDateTime(${T0 + 86400})`, '&max_memory_usage=0');
    for (const mode of MODES) {
      pin(mode === 'pinned');
      const full = [];
      const refresh = [];
      for (let i = 0; i < PAIRS; i++) {
        log(`${mode}: ${what}: from scratch and refreshed (${i + 1}/${PAIRS})`);
        const scratch = join(work, 'refresh-scratch');
        const copy = join(work, 'refresh-copy');
        const fromScratch = async () => {
          rmSync(scratch, { recursive: true, force: true });
          const f = await timed(() => child('corpus', { ...day, data_root: scratch }));
          full.push(f);
        };
        const refreshed = async () => {
          rmSync(copy, { recursive: true, force: true });
          execFileSync('cp', ['-a', sealed, copy]);
          const r = await timed(() => child('corpus', { ...day, data_root: copy }));
          refresh.push(r);
        };
        // Each goes first every other time: whichever ran second was measured up to 15% slower (the server's
        // and the disk's state after the first), which an order fixed for every pair counts against one side.
        for (const run of i % 2 === 0 ? [fromScratch, refreshed] : [refreshed, fromScratch]) await run();
      }
      pin(false);
      const [f, r] = [best(full, 'seconds'), best(refresh, 'seconds')];
      const how = r.skipped ? 'found fresh, skipped' : r.refreshed ? `${r.refreshed.buckets} buckets rebuilt, ${r.refreshed.mints} mints fetched, ${r.refreshed.files_kept} files kept` : 'exported whole';
      const read = (x) => `fetch ${fmt(x.read.fetch.rows / 1e6, 2)}M rows / ${fmt(x.read.fetch.mib, 0)} MiB, check ${fmt(x.read.fp.rows / 1e6, 3)}M rows / ${fmt(x.read.fp.mib, 0)} MiB`;
      const pct = (a, b) => `${fmt((100 * a) / b, 1)}%`;
      lines.push(`| ${mode} | ${what} | ${fmt(f.seconds)} s; ${read(f)} | ${fmt(r.seconds)} s; ${read(r)}; ${how} | **${pct(r.seconds, f.seconds)}** / **${pct(r.read.fetch.rows, f.read.fetch.rows)}** / **${pct(r.read.fetch.rows + r.read.fp.rows, f.read.fetch.rows + f.read.fp.rows)}** / ${pct(r.read.fetch.mib + r.read.fp.mib, f.read.fetch.mib + f.read.fp.mib)} |`);
    }
  }
  const stamp = `Last run: \`npm run bench -- --refresh --rows ${ROWS}\` on ${new Date().toISOString().slice(0, 10)}; one day of ${fmt(rows / 1e6, 2)}M rows (${TOKENS} tokens x ${PER_TOKEN} 1m candles), best of ${PAIRS}, from scratch and refreshed alternating on the same server state, each first every other time. Rows read: the server's \`read_rows\` over the exporter's queries, from \`system.query_log\`: the fetches, and the check that the day changed (fingerprint queries, scans of new data parts).`;
  const text = `${stamp}

| mode | source change | the day exported from scratch | the sealed day refreshed | refreshed / from scratch: time / rows fetched / server rows read / server MiB read (checks included) |
|---|---|---|---|---|
${lines.join('\n')}

${await machine()}`;
  console.log(text);
  writeSection('refresh', text);
}

try {
  if (OBJECT_STORE) await objectStoreRun();
  else if (REFRESH) await refreshRun();
  else if (FRESHNESS) await freshnessRun();
  else if (SCALE) await scaleRun();
  else await mainRun();
} finally {
  if (pinned) pin(false);
  rmSync(work, { recursive: true, force: true });
  await q('DROP DATABASE IF EXISTS bench');
}
