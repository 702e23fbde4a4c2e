import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { connectionOf } from '../lib/cli/clickhouse-env.js';
import { progressLine } from '../lib/cli/progress-bar.js';
import { speakFlags } from '../lib/cli/usage.js';
import { clickhouseHttps, clickhouseUrl } from './support/clickhouse.js';
import { quantbot, startQuantbot } from './support/cli.js';
import { MINTS, T0, useCandleFixture } from './support/fixture.js';
import { filesUnder, runsDirEntries, tempDir } from './support/lake.js';
import { selfSignedCertificate, startTlsFront } from './support/tls-front.js';

/** The test server's user with a password (scripts/clickhouse-server.sh). */
const SECRET = 's3cret-pa55';
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

/** An error as the CLI prints it: exactly one line, `quantbot lake: CODE: message`. */
function oneErrorLine(stderr: string): { code: string; message: string } {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines, stderr).toHaveLength(1);
  const m = /^quantbot lake: ([A-Z_]+): (.+)$/.exec(lines[0]!);
  expect(m, lines[0]).not.toBeNull();
  return { code: m![1]!, message: m![2]! };
}

describe('quantbot lake CLI', () => {
  let db: string;
  let work: string;
  let alerts: string;
  let env: Record<string, string>;

  const fixture = useCandleFixture('cli');
  beforeAll(async () => {
    db = fixture.db;
    work = tempDir('lake-cli');
    alerts = join(work, 'alerts.csv');
    writeFileSync(alerts, `alert_id,mint,ts\nx1,${MINTS[2]},${T0 + 3600}\nx2,${MINTS[3]},${T0 + 9000}\n`);
    const url = clickhouseUrl();
    env = { CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port, CLICKHOUSE_DATABASE: db, CLICKHOUSE_USER: 'default' };
  });
  const run = (root: string, runId: string, extra: string[] = []) =>
    ['lake', 'export-run-slices', '--run-id', runId, '--interval', '1m', '--window', 'pre10_post20', '--alerts', alerts, '--data-root', root, ...extra];

  it('exports with connection settings from the environment and a generated run id (table output)', () => {
    const root = join(work, 'env');
    const r = quantbot(['lake', 'export-run-slices', '--interval', '1m', '--window', 'pre10_post20', '--alerts', alerts, '--data-root', root], env);
    expect(r.stderr).toBe(''); // not a TTY: no progress bar
    expect(r.code).toBe(0);
    const runId = /^run_id\s+(\S+)$/m.exec(r.stdout)?.[1];
    expect(runId).toMatch(/^lake-export_lake_all_\d{14}_[0-9a-f]{8}$/);
    for (const key of ['manifest_path', 'coverage_path', 'total_rows', 'total_files', 'total_bytes', 'rows_fetched', 'duration_ms', 'coverage.kept_events']) {
      expect(r.stdout).toMatch(new RegExp(`^${key.replace('.', '\\.')}\\s+\\S+`, 'm'));
    }
    const manifestPath = /^manifest_path\s+(\S+)$/m.exec(r.stdout)![1]!;
    expect(JSON.parse(readFileSync(manifestPath, 'utf8')).run_id).toBe(runId);
  });

  it('takes --clickhouse-url, prints JSON and CSV, and verifies the run in plain words', () => {
    const root = join(work, 'url');
    const url = clickhouseUrl();
    const r = quantbot([...run(root, 'cli-json'), '--format', 'json', '--clickhouse-url', `http://tester:${SECRET}@${url.host}/${db}`]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(Object.keys(summary)).toEqual([
      'run_id', 'manifest_path', 'coverage_path', 'total_rows', 'total_files', 'total_bytes', 'rows_fetched', 'duplicates_dropped', 'retries',
      'duration_ms', 'coverage',
    ]);
    expect(summary.run_id).toBe('cli-json');
    expect(summary.total_rows).toBeGreaterThan(0);
    // The fixture re-ingested minutes 600-629 with newer prices; alert x1's window (minutes 50-80) has none, so
    // every row fetched was kept.
    expect(summary.rows_fetched).toBe(summary.total_rows + summary.duplicates_dropped);
    expect(summary.duration_ms).toBeGreaterThan(0);
    expect(summary.coverage).toMatchObject({ kept_events: 2, dropped_events: 0 });

    const csv = quantbot([...run(root, 'cli-json'), '--format', 'csv', '--overwrite'], env);
    expect(csv.code, csv.stderr).toBe(0);
    const [header, values] = csv.stdout.trim().split('\n');
    expect(header!.split(',')).toContain('total_rows');
    expect(values!.split(',')[header!.split(',').indexOf('total_rows')]).toBe(String(summary.total_rows));

    const runDir = join(root, 'lake', 'runs', 'run_id=cli-json');
    const ok = quantbot(['lake', 'verify', runDir]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('is intact');

    const files = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')).files as Array<{ path: string; bytes: number }>;
    const part = files.at(-1)!.path;
    const bytes = readFileSync(join(runDir, part));
    bytes[10]! ^= 0xff;
    writeFileSync(join(runDir, part), bytes);
    const bad = quantbot(['lake', 'verify', runDir, '--format', 'json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).problems).toContainEqual(expect.objectContaining({ kind: 'hash', path: part }));
    truncateSync(join(runDir, files[0]!.path), 100);
    const table = quantbot(['lake', 'verify', runDir]);
    expect(table.code).toBe(1);
    expect(table.stdout).toContain(`manifest says ${files[0]!.bytes} bytes, file has 100`);
    expect(table.stdout).not.toMatch(/Some\(|None\b/);
  });

  it('exits 1 with one coded line on stderr when the export fails', () => {
    const root = join(work, 'fail');
    expect(quantbot(run(root, 'dup'), env).code).toBe(0);
    const again = quantbot(run(root, 'dup'), env);
    expect(again.code).toBe(1);
    expect(oneErrorLine(again.stderr).code).toBe('RUN_EXISTS');
    const wrong = quantbot(run(root, 'pw'), { ...env, CLICKHOUSE_USER: 'tester', CLICKHOUSE_PASSWORD: 'nope-nope' });
    expect(wrong.code).toBe(1);
    expect(oneErrorLine(wrong.stderr).code).toBe('CLICKHOUSE_AUTH');
    expect(wrong.stderr).not.toContain('nope-nope');
    const noAlerts = quantbot(['lake', 'export-run-slices', '--interval', '1m', '--window', 'pre1_post1', '--alerts', join(work, 'nope.csv')], env);
    expect(noAlerts.code).toBe(1);
    expect(oneErrorLine(noAlerts.stderr)).toMatchObject({ code: 'INVALID_ALERTS', message: expect.stringMatching(/check --alerts$/) });
    const unreachable = quantbot(run(root, 'down'), { ...env, CLICKHOUSE_PORT: '1', CLICKHOUSE_RETRIES: '0' });
    expect(unreachable.code).toBe(1);
    expect(oneErrorLine(unreachable.stderr).code).toBe('CLICKHOUSE_UNREACHABLE');
  });

  it('with --format json, a failure is a JSON object on stderr', () => {
    const root = join(work, 'json-errors');
    expect(quantbot(run(root, 'j'), env).code).toBe(0);
    const again = quantbot([...run(root, 'j'), '--format', 'json'], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(JSON.parse(again.stderr)).toEqual({ error: { code: 'RUN_EXISTS', message: expect.stringContaining('runs/run_id=j already exists; pass --overwrite') } });
    const usage = quantbot([...run(root, 'k'), '--format', 'json', '--clickhouse-url', 'http://[::1']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr).error).toMatchObject({ code: 'USAGE', message: expect.stringContaining('--clickhouse-url') });
  });

  it('exports a corpus and skips its sealed days on a re-run', () => {
    const root = join(work, 'corpus');
    const args = ['lake', 'export-corpus', '--interval', '1m', '--date-from', '2021-01-01', '--date-to', '2021-01-03', '--data-root', root, '--format', 'csv'];
    const first = quantbot(args, env);
    expect(first.code, first.stderr).toBe(0);
    const [header, ...rows] = first.stdout.trim().split('\n');
    expect(header).toBe('date,status,reason,refreshed,sealed,files,rows,bytes,dir,detail');
    expect(rows.map((r) => r.split(',').slice(0, 5).join(','))).toEqual(['2021-01-01,exported,new,,true', '2021-01-02,exported,new,,true']);
    const again = quantbot(args.slice(0, -2), env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^2021-01-01\s+skipped\s+fresh\s+true/m);
    const bad = quantbot(['lake', 'export-corpus', '--interval', '1m', '--date-from', '2021-01-03', '--date-to', '2021-01-01', '--data-root', root], env);
    expect(bad.code).toBe(2);
    const { code, message } = oneErrorLine(bad.stderr);
    expect(code).toBe('INVALID_CONFIG');
    expect(message).toMatch(/--date-(from|to)/);
  });

  it('every mistake on the command line is one line on stderr naming what to fix, and exit 2', () => {
    const ok = ['lake', 'export-run-slices', '--interval', '1m', '--window', 'pre1_post1', '--alerts', alerts];
    const corpus = ['lake', 'export-corpus', '--interval', '1m', '--date-from', '2021-01-01', '--date-to', '2021-01-02'];
    const cases: Array<[string, string[], Record<string, string>, string, RegExp]> = [
      ['a URL that does not parse', [...ok, '--clickhouse-url', 'http://[::1'], {}, 'USAGE', /--clickhouse-url .*not a valid URL/],
      ['a port out of range', [...ok, '--clickhouse-url', 'http://127.0.0.1:99999/quantbot'], {}, 'USAGE', /port 99999 is out of range/],
      ['a port that is not a number', ok, { CLICKHOUSE_PORT: 'abc' }, 'USAGE', /CLICKHOUSE_PORT must be a port number.*"abc"/],
      ['a timeout that is not a number', ok, { CLICKHOUSE_CONNECT_TIMEOUT: '5s' }, 'USAGE', /CLICKHOUSE_CONNECT_TIMEOUT must be whole seconds/],
      ['a scheme other than http(s)', [...ok, '--clickhouse-url', 'ftp://x'], {}, 'USAGE', /must start with http:\/\/ or https:\/\//],
      ['a missing mints file', [...corpus, '--mints', '/missing/file'], {}, 'USAGE', /--mints: cannot read \/missing\/file: ENOENT/],
      ['a typo in a flag', ['lake', 'export-run-slices', '--interval', '1m', '--windw', 'pre1_post1', '--alerts', alerts], {}, 'USAGE', /unknown option '--windw'.*--window/],
      ['missing flags', ['lake', 'export-run-slices', '--alerts', alerts], {}, 'USAGE', /export-run-slices needs --interval, --window \(see quantbot lake export-run-slices --help\)$/],
      ['a negative number', [...ok, '--target-file-mb', '-3'], {}, 'USAGE', /--target-file-mb must be a whole number greater than 0/],
      ['a zero timeout', [...ok, '--connect-timeout', '0'], {}, 'USAGE', /--connect-timeout must be a whole number greater than 0/],
      ['an unknown format', [...ok, '--format', 'xml'], {}, 'USAGE', /--format.*xml/],
      ['an unknown command', ['lake', 'nonsense'], {}, 'USAGE', /unknown command 'nonsense' \(see quantbot lake --help\)/],
      ['a bad interval', ['lake', 'export-run-slices', '--interval', '1min', '--window', 'pre1_post1', '--alerts', alerts], {}, 'INVALID_CONFIG', /--interval/],
      ['an oversized window', ['lake', 'export-run-slices', '--interval', '1m', '--window', 'pre99999999_post1', '--alerts', alerts], env, 'INVALID_CONFIG', /--window/],
      ['a wrong file type', ['lake', 'export-run-slices', '--interval', '1m', '--window', 'pre1_post1', '--alerts', '/tmp/a.json'], {}, 'INVALID_CONFIG', /--alerts/],
      ['a bucket range', [...corpus, '--buckets', '7f-00'], env, 'INVALID_CONFIG', /--buckets/],
    ];
    for (const [what, args, extraEnv, code, message] of cases) {
      const r = quantbot(args, extraEnv);
      expect(r.code, `${what}: ${r.stderr}`).toBe(2);
      expect(r.stdout, what).toBe('');
      const said = oneErrorLine(r.stderr);
      expect(said.code, what).toBe(code);
      expect(said.message, what).toMatch(message);
      // Config errors speak the flags the user typed, not the API's field names.
      expect(said.message, what).not.toMatch(/\b(alerts_path|clickhouse\.\w+|connect_timeout|data_root)\b/);
    }
  });

  it('answers --version, and help alone on stdout', () => {
    for (const flag of ['--version', '-V']) {
      const r = quantbot([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(VERSION);
    }
    for (const args of [[], ['lake']]) {
      const r = quantbot(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^Usage: quantbot/);
    }
  });

  it('documents everything in --help', () => {
    const help = quantbot(['lake', '--help']);
    expect(help.code).toBe(0);
    for (const word of ['export-run-slices', 'export-corpus', 'corpus-status', 'verify', 'CLICKHOUSE_HOST', 'CLICKHOUSE_PASSWORD', 'CLICKHOUSE_SECURE', 'CLICKHOUSE_CA_CERT', 'Exit codes', '130']) {
      expect(help.stdout).toContain(word);
    }
    const sub = quantbot(['lake', 'export-run-slices', '--help']);
    expect(sub.code).toBe(0);
    for (const flag of ['--run-id', '--interval', '--window', '--alerts', '--data-root', '--chain', '--compression', '--target-file-mb',
      '--strict-coverage', '--min-required-pre', '--target-total', '--format', '--overwrite', '--clickhouse-url', '--ca-cert',
      '--connect-timeout', '--receive-timeout', '--retries', '--retry-max-wait', '--source', '--require-fresh']) {
      expect(sub.stdout).toContain(flag);
    }
  });

  it('HTTPS: exports over an https:// URL with the server\'s CA, and says CLICKHOUSE_TLS without it', () => {
    const { url, ca } = clickhouseHttps();
    const root = join(work, 'https');
    const byUrl = quantbot([...run(root, 'tls'), '--format', 'json', '--clickhouse-url', `https://${url.host}/${db}`, '--ca-cert', ca]);
    expect(byUrl.code, byUrl.stderr).toBe(0);
    expect(quantbot(['lake', 'verify', join(root, 'lake', 'runs', 'run_id=tls')]).code).toBe(0);
    const byEnv = quantbot([...run(root, 'tls-env'), '--format', 'json'], { ...env, CLICKHOUSE_SECURE: '1', CLICKHOUSE_PORT: url.port, CLICKHOUSE_CA_CERT: ca });
    expect(byEnv.code, byEnv.stderr).toBe(0);
    const plain = JSON.parse(quantbot([...run(root, 'plain'), '--format', 'json'], env).stdout);
    for (const tls of [JSON.parse(byUrl.stdout), JSON.parse(byEnv.stdout)]) {
      expect([tls.total_rows, tls.total_bytes]).toEqual([plain.total_rows, plain.total_bytes]);
    }
    const untrusted = quantbot([...run(root, 'tls-no-ca'), '--clickhouse-url', `https://${url.host}/${db}`]);
    expect(untrusted.code).toBe(1);
    const { code, message } = oneErrorLine(untrusted.stderr);
    expect(code).toBe('CLICKHOUSE_TLS');
    expect(message).toMatch(/--ca-cert|ca_cert/);
    expect(runsDirEntries(root)).toEqual(['run_id=plain', 'run_id=tls', 'run_id=tls-env']);
  });

  it('HTTPS with a self-signed certificate from one `openssl req -x509` (CA:TRUE): given with --ca-cert it is pinned, same rows as HTTP; another self-signed one is refused', async () => {
    const root = join(work, 'pinned');
    const own = selfSignedCertificate(work, 'own');
    const stranger = selfSignedCertificate(work, 'stranger');
    expect(readFileSync(own.cert, 'utf8')).toContain('BEGIN CERTIFICATE');
    const front = await startTlsFront(own, clickhouseUrl());
    try {
      const url = `https://127.0.0.1:${front.port}/${db}`;
      const pinned = await startQuantbot([...run(root, 'pinned'), '--format', 'json', '--clickhouse-url', url, '--ca-cert', own.cert]).done;
      expect(pinned.code, pinned.stderr).toBe(0);
      // The certificate names only CN=localhost: a pinned certificate's names are not checked (docs/lake-format.md).
      const byName = await startQuantbot([...run(root, 'pinned-by-name'), '--clickhouse-url', `https://localhost:${front.port}/${db}`, '--ca-cert', own.cert]).done;
      expect(byName.code, byName.stderr).toBe(0);
      const refused = await startQuantbot([...run(root, 'stranger'), '--clickhouse-url', url, '--ca-cert', stranger.cert]).done;
      expect(refused.code).toBe(1);
      expect(oneErrorLine(refused.stderr).code).toBe('CLICKHOUSE_TLS');
      const publicRoots = await startQuantbot([...run(root, 'no-ca'), '--clickhouse-url', url]).done;
      expect(oneErrorLine(publicRoots.stderr).code).toBe('CLICKHOUSE_TLS');
    } finally {
      await front.close();
    }
    const plain = quantbot([...run(root, 'plain'), '--format', 'json'], env);
    expect(plain.code, plain.stderr).toBe(0);
    const rows = (runId: string) => filesUnder(join(root, 'lake', 'runs', `run_id=${runId}`, 'slices'));
    expect(rows('pinned')).toEqual(rows('plain'));
    expect(runsDirEntries(root)).toEqual(['run_id=pinned', 'run_id=pinned-by-name', 'run_id=plain']);
  });

  it('Ctrl-C and SIGTERM stop an export: it says so, publishes nothing, leaves no staging directory, exits 130/143', async () => {
    const root = join(work, 'interrupted');
    // Each mint's write sleeps 3 s, so the signal always lands mid-export.
    const slow = { ...env, QUANTBOT_LAKE_FAILPOINT: 'export.write_mint:sleep=3000' };
    for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const { child, done } = startQuantbot(run(root, `stopped-${signal}`), slow);
      await sleep(1000);
      child.kill(signal);
      const exit = await done;
      expect(exit.code, exit.stderr).toBe(status);
      expect(exit.stderr).toContain('stopping the export');
      expect(exit.stderr).toMatch(/^quantbot lake: CANCELLED: /m);
      expect(runsDirEntries(root), 'nothing published, nothing left to sweep').toEqual([]);
    }
  });

  it('never prints a password, whatever the input', () => {
    const { url: https } = clickhouseHttps();
    const host = clickhouseUrl().host;
    const root = join(work, 'secrets');
    const tries: Array<[string[], Record<string, string>]> = [
      [['--clickhouse-url', `http://tester:${SECRET}@[::1`], {}],
      [['--clickhouse-url', `http://tester:${SECRET}@127.0.0.1:99999/db`], {}],
      [['--clickhouse-url', `ftp://tester:${SECRET}@x/db`], {}],
      [['--clickhouse-url', `http://tester:${SECRET}@${host}/${db}`, '--table', 'missing_table'], {}],
      [['--clickhouse-url', `http://tester:${SECRET.replace('-', '%2D')}@${host}/${db}`, '--table', 'missing_table', '--format', 'json'], {}],
      [['--clickhouse-url', `https://tester:${SECRET}@${https.host}/${db}`], {}],
      [['--table', 'missing_table'], { ...env, CLICKHOUSE_USER: 'tester', CLICKHOUSE_PASSWORD: SECRET }],
      [[], { ...env, CLICKHOUSE_USER: 'tester', CLICKHOUSE_PASSWORD: SECRET, CLICKHOUSE_PORT: '1', CLICKHOUSE_RETRIES: '1' }],
      [[], { ...env, CLICKHOUSE_USER: 'tester', CLICKHOUSE_PASSWORD: SECRET, CLICKHOUSE_SECURE: 'maybe' }],
    ];
    for (const [i, [extra, extraEnv]] of tries.entries()) {
      const r = quantbot([...run(root, `s${i}`), ...extra], extraEnv);
      expect(r.code, `try ${i}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr.length, `try ${i} says something`).toBeGreaterThan(0);
      for (const out of [r.stdout, r.stderr]) {
        expect(out, `try ${i}`).not.toContain(SECRET);
        expect(out, `try ${i}`).not.toContain('s3cret%2Dpa55');
      }
    }
  });
});

describe('CLI pieces', () => {
  it('connection settings: flags override the URL, which overrides the environment', () => {
    const env = { CLICKHOUSE_HOST: 'envhost', CLICKHOUSE_PORT: '9000', CLICKHOUSE_CONNECT_TIMEOUT: '7', CLICKHOUSE_CA_CERT: '/env.pem', CLICKHOUSE_PASSWORD: 'p' };
    expect(connectionOf(env, { table: 't' })).toMatchObject({ host: 'envhost', port: 9000, secure: false, connect_timeout: 7, ca_cert: '/env.pem', password: 'p' });
    expect(connectionOf(env, { table: 't', clickhouseUrl: 'https://u@urlhost/db', connectTimeout: 30, receiveTimeout: 600, caCert: '/flag.pem' })).toMatchObject({
      host: 'urlhost', port: 8443, secure: true, database: 'db', user: 'u', password: 'p', connect_timeout: 30, send_receive_timeout: 600, ca_cert: '/flag.pem',
    });
    expect(connectionOf({ CLICKHOUSE_SECURE: 'true' }, { table: 't' })).toMatchObject({ port: 8443, secure: true });
    expect(connectionOf({}, { table: 't', clickhouseUrl: 'http://[::1]/x' })).toMatchObject({ host: '::1', port: 8123 });
  });

  it('config errors name flags', () => {
    expect(speakFlags('invalid run-slice export config: alerts_path: must end in .csv; clickhouse.connect_timeout: too big')).toBe(
      'invalid run-slice export config: --alerts: must end in .csv; --connect-timeout (CLICKHOUSE_CONNECT_TIMEOUT): too big',
    );
    expect(speakFlags('invalid window "x": expected pre<N>_post<M>')).toBe('invalid --window "x": expected pre<N>_post<M>');
    expect(speakFlags('/data/lake/runs/run_id=r1 already exists; pass overwrite to replace it')).toBe(
      '/data/lake/runs/run_id=r1 already exists; pass --overwrite to replace it',
    );
    // A word that only happens to be a field name is left alone.
    expect(speakFlags('the window of alert 3 is empty')).toBe('the window of alert 3 is empty');
  });

  it('the progress line shows elapsed time, time left and the corpus day', () => {
    const base = { phase: 'exporting', mints_done: 25, mints_total: 100, rows: 1000, bytes: 2048, days_done: 1, days_total: 4 } as const;
    const line = progressLine({ ...base, day: '2021-01-02' }, 65_000);
    expect(line).toContain('25/100 mints');
    expect(line).toContain('1:05');
    expect(line).toContain('~3:15 left');
    expect(line).toContain('day 2021-01-02 (2/4)');
    expect(progressLine({ ...base, day: undefined, days_total: 0, days_done: 0 }, 3_723_000)).toContain('1:02:03');
  });
});
