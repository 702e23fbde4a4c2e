import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { clickhouseUrl } from './support/clickhouse.js';
import { quantbot } from './support/cli.js';
import { MINTS, T0, useCandleFixture } from './support/fixture.js';
import { tempDir } from './support/lake.js';

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

  it('exports with connection settings from the environment and a generated run id (table output)', () => {
    const root = join(work, 'env');
    const r = quantbot(['lake', 'export-run-slices', '--interval', '1m', '--window', 'pre10_post20', '--alerts', alerts, '--data-root', root], env);
    expect(r.stderr).toBe(''); // not a TTY: no progress bar
    expect(r.code).toBe(0);
    const runId = /^run_id\s+(\S+)$/m.exec(r.stdout)?.[1];
    expect(runId).toMatch(/^lake-export_lake_all_\d{14}_[0-9a-f]{8}$/);
    for (const key of ['manifest_path', 'coverage_path', 'total_rows', 'total_files', 'total_bytes', 'coverage.kept_events']) {
      expect(r.stdout).toMatch(new RegExp(`^${key.replace('.', '\\.')}\\s+\\S+`, 'm'));
    }
    const manifestPath = /^manifest_path\s+(\S+)$/m.exec(r.stdout)![1]!;
    expect(JSON.parse(readFileSync(manifestPath, 'utf8')).run_id).toBe(runId);
  });

  it('takes --clickhouse-url, prints JSON and CSV, and verifies the run', () => {
    const root = join(work, 'url');
    const url = clickhouseUrl();
    const base = ['lake', 'export-run-slices', '--run-id', 'cli-json', '--interval', '1m', '--window', 'pre10_post20', '--alerts', alerts, '--data-root', root];
    const r = quantbot([...base, '--format', 'json', '--clickhouse-url', `http://tester:s3cret-pa55@${url.host}/${db}`]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(Object.keys(summary)).toEqual(['run_id', 'manifest_path', 'coverage_path', 'total_rows', 'total_files', 'total_bytes', 'coverage']);
    expect(summary.run_id).toBe('cli-json');
    expect(summary.total_rows).toBeGreaterThan(0);
    expect(summary.coverage).toMatchObject({ kept_events: 2, dropped_events: 0 });

    const csv = quantbot([...base, '--format', 'csv', '--overwrite'], env);
    expect(csv.code, csv.stderr).toBe(0);
    const [header, values] = csv.stdout.trim().split('\n');
    expect(header!.split(',')).toContain('total_rows');
    expect(values!.split(',')[header!.split(',').indexOf('total_rows')]).toBe(String(summary.total_rows));

    const runDir = join(root, 'lake', 'runs', 'run_id=cli-json');
    const ok = quantbot(['lake', 'verify', runDir]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('is intact');

    const part = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')).files.at(-1).path;
    const bytes = readFileSync(join(runDir, part));
    bytes[10]! ^= 0xff;
    writeFileSync(join(runDir, part), bytes);
    const bad = quantbot(['lake', 'verify', runDir, '--format', 'json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).problems).toContainEqual(expect.objectContaining({ kind: 'hash', path: part }));
  });

  it('exits 1 with the code on stderr when the export fails', () => {
    const root = join(work, 'fail');
    const args = ['lake', 'export-run-slices', '--run-id', 'dup', '--interval', '1m', '--window', 'pre10_post20', '--alerts', alerts, '--data-root', root];
    expect(quantbot(args, env).code).toBe(0);
    const again = quantbot(args, env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('RUN_EXISTS');
    const wrong = quantbot([...args, '--run-id', 'pw'], { ...env, CLICKHOUSE_USER: 'tester', CLICKHOUSE_PASSWORD: 'nope-nope' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('CLICKHOUSE_AUTH');
    expect(wrong.stderr).not.toContain('nope-nope');
    const unreachable = quantbot([...args, '--run-id', 'down'], { ...env, CLICKHOUSE_PORT: '1' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('CLICKHOUSE_UNREACHABLE');
  });

  it('exports a corpus and skips its sealed days on a re-run', () => {
    const root = join(work, 'corpus');
    const args = ['lake', 'export-corpus', '--interval', '1m', '--date-from', '2021-01-01', '--date-to', '2021-01-03', '--data-root', root, '--format', 'csv'];
    const first = quantbot(args, env);
    expect(first.code, first.stderr).toBe(0);
    const [header, ...rows] = first.stdout.trim().split('\n');
    expect(header).toBe('date,status,sealed,files,rows,bytes,dir');
    expect(rows.map((r) => r.split(',').slice(0, 3).join(','))).toEqual(['2021-01-01,exported,true', '2021-01-02,exported,true']);
    const again = quantbot(args.slice(0, -2), env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^2021-01-01\s+skipped\s+true/m);
    const bad = quantbot(['lake', 'export-corpus', '--interval', '1m', '--date-from', '2021-01-03', '--date-to', '2021-01-01', '--data-root', root], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('INVALID_CONFIG');
  });

  it('exits 2 on usage errors', () => {
    expect(quantbot(['lake', 'export-run-slices', '--window', 'pre1_post1', '--alerts', alerts]).code).toBe(2);
    const badNumber = quantbot(['lake', 'export-run-slices', '--interval', '1m', '--window', 'pre1_post1', '--alerts', alerts, '--target-file-mb', '-3']);
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toContain('--target-file-mb');
    expect(quantbot(['lake', 'export-run-slices', '--interval', '1m', '--window', 'pre1_post1', '--alerts', alerts, '--format', 'xml']).code).toBe(2);
    expect(quantbot(['lake', 'nonsense']).code).toBe(2);
    expect(quantbot(['lake', 'export-run-slices', '--interval', '1m', '--window', 'w', '--alerts', alerts, '--clickhouse-url', 'ftp://x']).code).toBe(2);
  });

  it('documents everything in --help', () => {
    const help = quantbot(['lake', '--help']);
    expect(help.code).toBe(0);
    for (const word of ['export-run-slices', 'verify', 'CLICKHOUSE_HOST', 'CLICKHOUSE_PASSWORD', 'Exit codes']) expect(help.stdout).toContain(word);
    const sub = quantbot(['lake', 'export-run-slices', '--help']);
    expect(sub.code).toBe(0);
    for (const flag of ['--run-id', '--interval', '--window', '--alerts', '--data-root', '--chain', '--compression', '--target-file-mb',
      '--strict-coverage', '--min-required-pre', '--target-total', '--format', '--overwrite', '--clickhouse-url']) {
      expect(sub.stdout).toContain(flag);
    }
  });
});
