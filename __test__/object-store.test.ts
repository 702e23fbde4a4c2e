// The lake in an object store, beyond what the parameterised suites check: the same keys and bytes as on disk
// (multipart-sized files included), an independent reader straight from S3, the commit protocol under races and
// kill -9, and coded errors without secrets.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { corpusStatus, exportCorpus, exportRunSlices, type LakeProgressEvent, verifyLakeDir } from '#native';
import { chQuery, clickhouseUrl, connection } from './support/clickhouse.js';
import { quantbot, startQuantbot } from './support/cli.js';
import { rejection } from './support/errors.js';
import { MINTS, T0, useCandleFixture } from './support/fixture.js';
import { filesUnder, runConfig, tempDir } from './support/lake.js';
import { awsEnv, s3Root, s3Suite, s3tool } from './support/roots.js';
import { startS3FaultProxy } from './support/s3-fault-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A manifest without what depends on the wall clock: created_at, the server's as_of, and the seal over them. */
function timeless(bytes: Buffer): unknown {
  const m = JSON.parse(bytes.toString('utf8'));
  delete m.created_at;
  delete m.seal;
  if (m.inputs?.source_snapshot?.clickhouse) delete m.inputs.source_snapshot.clickhouse.as_of;
  if (m.source_snapshot?.clickhouse) delete m.source_snapshot.clickhouse.as_of;
  return m;
}

/** Asserts two directories (fetched copies) hold the same files, byte for byte, manifests up to the clock. */
function expectSameTree(a: Map<string, Buffer>, b: Map<string, Buffer>) {
  const visible = (m: Map<string, Buffer>) => [...m.keys()].filter((p) => !p.split('/').some((s) => s.startsWith('.'))).sort();
  expect(visible(b)).toEqual(visible(a));
  for (const p of visible(a)) {
    if (p.endsWith('.json')) expect(timeless(b.get(p)!), p).toEqual(timeless(a.get(p)!));
    else expect(b.get(p)!.equals(a.get(p)!), p).toBe(true);
  }
}

describe.runIf(s3Suite())('a lake in an object store', () => {
  const s3 = s3Root();
  let db: string;
  let work: string;
  let alerts: string;
  let cliEnv: Record<string, string>;

  const fixture = useCandleFixture('s3');
  beforeAll(async () => {
    db = fixture.db;
    work = tempDir('lake-s3');
    alerts = join(work, 'alerts.csv');
    writeFileSync(alerts, ['alert_id,mint,ts', ...MINTS.map((m, i) => `s${i},${m},${T0 + 3600 + i * 600}`)].join('\n') + '\n');
    const url = clickhouseUrl();
    cliEnv = { CLICKHOUSE_HOST: url.hostname, CLICKHOUSE_PORT: url.port, CLICKHOUSE_DATABASE: db, ...awsEnv() };
  });

  const exportArgs = (root: string, runId: string, extra: string[] = []) => [
    'lake', 'export-run-slices', '--run-id', runId, '--interval', '1m', '--window', 'pre60_post120', '--alerts', alerts,
    '--data-root', root, '--concurrency', '1', ...extra,
  ];

  it('writes the same keys and bytes as on disk, multipart uploads included, and pyarrow reads it from S3', async () => {
    // One mint with 400,000 uncompressed candles: a 15 MiB part file, uploaded in 8 MiB parts.
    const mint = 'BigMint11111111111111111111111111111111111111';
    await chQuery(`CREATE TABLE ${db}.big AS ${db}.ohlcv_candles`);
    await chQuery(
      `INSERT INTO ${db}.big SELECT '${mint}', 'solana', toDateTime(${T0} + number * 60), 60, number, number, number, number, number, ` +
        `toDateTime(1700000000) FROM system.numbers LIMIT 400000`,
    );
    const bigAlerts = join(work, 'big.csv');
    writeFileSync(bigAlerts, `alert_id,mint,ts\nbig,${mint},${T0 + 200_000 * 60}\n`);
    const cfg = (root: string) => ({
      ...runConfig(db, root, bigAlerts, { window: 'pre200000_post200000', compression: 'none' as const, target_file_mb: 64 }),
      clickhouse: connection(db, 'big'),
    });
    const local = await exportRunSlices(cfg(tempDir('same-local')));
    const remote = await exportRunSlices(cfg(s3.fresh('same')));
    const sizes = (local.manifest as { files: Array<{ bytes: number }> }).files.map((f) => f.bytes);
    expect(Math.max(...sizes)).toBeGreaterThan(8 << 20);
    expectSameTree(filesUnder(local.run_dir), filesUnder(await s3.local(remote.run_dir)));
    expect((await verifyLakeDir(remote.run_dir)).ok).toBe(true);

    // The corpus too, two days of the fixture.
    const corpus = (root: string) => ({ data_root: root, interval: '1m', date_from: '2021-01-01', date_to: '2021-01-03', clickhouse: connection(db, 'ohlcv_candles') });
    const localCorpus = await exportCorpus(corpus(tempDir('same-corpus')));
    const remoteCorpus = await exportCorpus(corpus(s3.fresh('same-corpus')));
    expectSameTree(filesUnder(localCorpus.corpus_dir), filesUnder(await s3.local(remoteCorpus.corpus_dir)));

    // pyarrow's S3 filesystem and dataset reader, straight from the bucket, hive partitions and all.
    const read = JSON.parse(s3tool('rows', `${remote.run_dir}/slices`));
    expect(read).toMatchObject({ rows: 400_000, mints: 1 });
    expect(read.buckets).toEqual((remote.manifest as { outputs: Record<string, { mint_buckets: string[] }> }).outputs['slices/ohlcv/interval=1m/window=pre200000_post200000']!.mint_buckets);
    expect(read.columns).toEqual(expect.arrayContaining(['mint', 'ts', 'open', 'close', 'volume', 'mint_bucket']));

    // The CLI verifies by URL.
    const verified = quantbot(['lake', 'verify', remote.run_dir, '--format', 'json'], awsEnv());
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });
  });

  it('two exports of one run racing from two machines: exactly one commits, the run verifies', async () => {
    const root = s3.fresh('race');
    for (let round = 0; round < 3; round++) {
      const runId = `race-${round}`;
      // Separate work directories, as on two machines: only the object store's lease stands between them.
      const a = startQuantbot(exportArgs(root, runId), { ...cliEnv, TMPDIR: tempDir('machine-a') });
      const b = startQuantbot(exportArgs(root, runId), { ...cliEnv, TMPDIR: tempDir('machine-b') });
      const results = await Promise.all([a.done, b.done]);
      const codes = results.map((r) => r.code).sort();
      expect(codes, results.map((r) => r.stderr).join('\n')).toEqual([0, 1]);
      const loser = results.find((r) => r.code === 1)!;
      expect(loser.stderr).toMatch(/RUN_LOCKED|RUN_EXISTS/);
      const runDir = `${root}/lake/runs/run_id=${runId}`;
      const report = await verifyLakeDir(runDir);
      expect(report.ok, JSON.stringify(report.problems)).toBe(true);
    }
  });

  it('the README multi-machine corpus: a Job of four (two Kubernetes-indexed, two AWS Batch array children) at once, no shared file system', async () => {
    const root = s3.fresh('shards');
    const shardArgs = [
      'lake', 'export-corpus', '--interval', '1m', '--date-from', '2021-01-01', '--date-to', '2021-01-03',
      '--data-root', root, '--shards', '4', '--format', 'json',
    ];
    // Each "machine" has its own work directory and learns its index from its batch engine; they meet only in the bucket.
    const index = (k: number): Record<string, string> => (k % 2 ? { AWS_BATCH_JOB_ARRAY_INDEX: String(k) } : { JOB_COMPLETION_INDEX: String(k) });
    const runs = [0, 1, 2, 3].map((k) => startQuantbot(shardArgs, { ...cliEnv, ...index(k), TMPDIR: tempDir(`machine-${k}`) }));
    const exits = await Promise.all(runs.map((r) => r.done));
    for (const e of exits) expect(e.code, e.stderr).toBe(0);
    // Each wrote its own quarter: the shard manifests are named by the ranges 0/4 … 3/4 map to.
    const day = s3.list(`${root}/lake/corpus/ohlcv/interval=1m/date=2021-01-01`).filter((p) => p.startsWith('manifest.buckets-'));
    expect(day.sort()).toEqual(['00-3f', '40-7f', '80-bf', 'c0-ff'].map((b) => `manifest.buckets-${b}.json`));
    const noIndex = quantbot(shardArgs, cliEnv);
    expect(noIndex.code).toBe(2);
    expect(noIndex.stderr).toContain('JOB_COMPLETION_INDEX');
    const twoWays = quantbot([...shardArgs.slice(0, -4), '--shard', '1/4', '--buckets', '40-7f'], cliEnv);
    expect(twoWays.code).toBe(2);
    expect(twoWays.stderr).toContain('one of buckets, shard and shards');
    const one = await exportCorpus({ data_root: tempDir('one-machine'), interval: '1m', date_from: '2021-01-01', date_to: '2021-01-03', clickhouse: connection(db, 'ohlcv_candles') });
    const sharded = filesUnder(await s3.local(`${root}/lake/corpus/ohlcv/interval=1m`));
    const single = filesUnder(one.corpus_dir);
    const data = (m: Map<string, Buffer>) => [...m.keys()].filter((p) => p.endsWith('.parquet')).sort();
    expect(data(sharded)).toEqual(data(single));
    for (const p of data(single)) expect(sharded.get(p)!.equals(single.get(p)!), p).toBe(true);
    for (const day of ['2021-01-01', '2021-01-02']) {
      const dir = `${root}/lake/corpus/ohlcv/interval=1m/date=${day}`;
      expect((await verifyLakeDir(dir)).ok, day).toBe(true);
      const merged = JSON.parse(sharded.get(`date=${day}/manifest.json`)!.toString('utf8'));
      const whole = JSON.parse(single.get(`date=${day}/manifest.json`)!.toString('utf8'));
      expect(merged.files).toEqual(whole.files);
    }
    // corpus-status reads the days from the bucket and finds them fresh against the server.
    const status = await corpusStatus({ data_root: root, interval: '1m', date_from: '2021-01-01', date_to: '2021-01-03', clickhouse: connection(db, 'ohlcv_candles') });
    expect(status.days.map((d) => [d.date, d.state, d.dir])).toEqual([
      ['2021-01-01', 'fresh', `${root}/lake/corpus/ohlcv/interval=1m/date=2021-01-01`],
      ['2021-01-02', 'fresh', `${root}/lake/corpus/ohlcv/interval=1m/date=2021-01-02`],
    ]);
  });

  it('kill -9 during the upload: no manifest, and an export on the same machine takes the dead process\'s lease over at once', async () => {
    const root = s3.fresh('killed');
    const runDir = `${root}/lake/runs/run_id=victim`;
    // A 600 s lease: waiting it out would fail the test by minutes.
    const env = { ...cliEnv, QUANTBOT_LAKE_LEASE_SECONDS: '600' };
    const victim = startQuantbot(exportArgs(root, 'victim'), { ...env, TMPDIR: tempDir('machine-a'), QUANTBOT_LAKE_FAILPOINT: 'remote.upload:sleep=60000' });
    // Killed once its first object is up: it holds the lease and has uploaded part of the run.
    for (let i = 0; i < 600 && s3.list(runDir).length === 0; i++) await sleep(100);
    expect(s3.list(runDir).length, 'the attempt had uploaded something').toBeGreaterThan(0);
    victim.child.kill('SIGKILL');
    expect((await victim.done).signal).toBe('SIGKILL');
    expect(s3.list(runDir)).not.toContain('manifest.json');
    expect(s3.list(`${root}/lake/runs`)).toContain('.lock-run_id=victim');
    expect((await verifyLakeDir(runDir)).problems.map((p) => p.kind)).toEqual(['missing_manifest']);

    const started = Date.now();
    const next = quantbot(exportArgs(root, 'victim'), { ...env, TMPDIR: tempDir('machine-b') });
    expect(next.code, next.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(60_000);
    const manifest = JSON.parse(readFileSync(join(await s3.local(runDir), 'manifest.json'), 'utf8'));
    // The dead attempt's objects are gone or are the new run's: nothing the manifest does not list.
    expect(s3.list(runDir).sort()).toEqual(['manifest.json', ...manifest.files.map((f: { path: string }) => f.path)].sort());
    expect((await verifyLakeDir(runDir)).ok).toBe(true);
  });

  it('a lease of another machine keeps its time to live: locked while it lasts, taken over once it lapsed', async () => {
    const root = s3.fresh('elsewhere');
    const runDir = `${root}/lake/runs/run_id=victim`;
    const crashed = quantbot(exportArgs(root, 'victim'), { ...cliEnv, TMPDIR: tempDir('machine-a'), QUANTBOT_LAKE_FAILPOINT: 'remote.upload:abort' });
    expect(crashed.signal).toBe('SIGABRT');
    // Make the dead holder another machine's, with a 4 s lease (as if renewed just now).
    const runs = await s3.local(`${root}/lake/runs`);
    const lease = JSON.parse(readFileSync(join(runs, '.lock-run_id=victim'), 'utf8'));
    expect(lease.holder).toMatchObject({ pid: expect.any(Number), host: expect.any(String), boot: expect.any(String) });
    s3.put(`${root}/lake/runs`, '.lock-run_id=victim', Buffer.from(JSON.stringify({ ...lease, ttl_seconds: 4, holder: { ...lease.holder, host: 'another-machine' } })));
    const rewritten = Date.now();

    const blocked = quantbot(exportArgs(root, 'victim'), { ...cliEnv, TMPDIR: tempDir('machine-b') });
    expect(Date.now() - rewritten).toBeLessThan(4000);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toContain('RUN_LOCKED');
    expect(blocked.stderr).toContain(`by process ${lease.holder.pid} on another-machine`);

    await sleep(Math.max(0, rewritten + 4500 - Date.now()));
    const next = quantbot(exportArgs(root, 'victim'), { ...cliEnv, TMPDIR: tempDir('machine-b') });
    expect(next.code, next.stderr).toBe(0);
    expect((await verifyLakeDir(runDir)).ok).toBe(true);
  });

  it('S3 behind a proxy that throttles, fails and resets a share of requests: exports succeed, verify, and equal clean ones', async () => {
    const aws = awsEnv();
    const clean = await exportRunSlices(runConfig(db, s3.fresh('flaky-clean'), alerts));
    const cleanTree = filesUnder(await s3.local(clean.run_dir));
    const corpusOf = (root: string, endpoint?: string) => ({
      data_root: root, interval: '1m', date_from: '2021-01-01', date_to: '2021-01-03', clickhouse: connection(db, 'ohlcv_candles'),
      ...(endpoint ? { object_store: { endpoint } } : {}),
    });
    const cleanCorpus = await exportCorpus(corpusOf(s3.fresh('flaky-clean-corpus')));
    const cleanCorpusTree = filesUnder(await s3.local(cleanCorpus.corpus_dir));
    const totals = { requests: 0, slowDown: 0, serverError: 0, resetBefore: 0, resetAfter: 0 };
    for (const seed of [1, 2, 3]) {
      // 8% SlowDown, 4% InternalError, 4% resets (half of them after the server acted).
      const proxy = await startS3FaultProxy(aws.AWS_ENDPOINT_URL!, { seed, slowDown: 0.08, serverError: 0.04, resetBefore: 0.02, resetAfter: 0.02 });
      try {
        const run = await exportRunSlices({ ...runConfig(db, s3.fresh(`flaky-${seed}`), alerts), object_store: { endpoint: proxy.url } });
        const corpus = await exportCorpus(corpusOf(s3.fresh(`flaky-corpus-${seed}`), proxy.url));
        expect(corpus.days.map((d) => d.status)).toEqual(['exported', 'exported']);
        for (const dir of [run.run_dir, ...corpus.days.map((d) => d.dir)]) {
          const report = await verifyLakeDir(dir);
          expect(report.ok, JSON.stringify(report.problems)).toBe(true);
        }
        expectSameTree(cleanTree, filesUnder(await s3.local(run.run_dir)));
        expectSameTree(cleanCorpusTree, filesUnder(await s3.local(corpus.corpus_dir)));
      } finally {
        await proxy.close();
      }
      for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += proxy.stats[k];
    }
    console.log(`S3 faults over 3 seeds: ${JSON.stringify(totals)}`);
    expect(totals.slowDown * totals.serverError * totals.resetBefore * totals.resetAfter, JSON.stringify(totals)).toBeGreaterThan(0);
  });

  it('a corpus uploads its days behind the export: a day whose upload fails fails the export, the days before it stay sealed', async () => {
    const aws = awsEnv();
    // Every upload into day 3 is refused (403): not transient, so the export fails on it.
    const proxy = await startS3FaultProxy(aws.AWS_ENDPOINT_URL!, {
      seed: 3,
      refuse: ({ method, url }) => (method === 'PUT' && url.includes('/date=2021-01-03/') ? { status: 403, code: 'AccessDenied' } : undefined),
    });
    try {
      const root = s3.fresh('upload-fails');
      const err = await rejection(exportCorpus({
        data_root: root, interval: '1m', date_from: '2021-01-01', date_to: '2021-01-05', clickhouse: connection(db, 'ohlcv_candles'),
        object_store: { endpoint: proxy.url },
      }));
      expect(err.code).toBe('OBJECT_STORE_AUTH');
      expect(err.message).toContain('date=2021-01-03');
      const corpus = `${root}/lake/corpus/ohlcv/interval=1m`;
      for (const day of ['2021-01-01', '2021-01-02']) {
        expect((await verifyLakeDir(`${corpus}/date=${day}`)).ok, day).toBe(true);
      }
      // Day 3 was never committed, and day 4 (queued behind it) was dropped unpublished.
      const listed = s3.list(corpus);
      expect(listed.filter((p) => p.endsWith('manifest.json')).sort()).toEqual(['date=2021-01-01/manifest.json', 'date=2021-01-02/manifest.json']);
      expect(listed.some((p) => p.startsWith('date=2021-01-04/'))).toBe(false);
    } finally {
      await proxy.close();
    }
  });

  it('a conditional write whose answer is lost is recognised as its own: the lease taken and confirmed, the manifest committed', async () => {
    const aws = awsEnv();
    const proxy = await startS3FaultProxy(aws.AWS_ENDPOINT_URL!, {
      seed: 7,
      loseAnswerOnce: ({ method, headers }) => method === 'PUT' && (headers['if-none-match'] === '*' || headers['if-match'] !== undefined),
    });
    try {
      const events: LakeProgressEvent[] = [];
      const run = await exportRunSlices({ ...runConfig(db, s3.fresh('lost-answer'), alerts), object_store: { endpoint: proxy.url } }, { onProgress: (e) => events.push(e) });
      // Each lost answer is a broken connection after the request went out, which only our retries ask again.
      const retries = events.flatMap((e) => (e.retry ? [e.retry] : []));
      expect(retries.length).toBeGreaterThanOrEqual(3);
      expect(retries.every((r) => r.server === 'object_store' && r.cause === 'connection_lost' && r.attempt === 1 && r.retries === 5)).toBe(true);
      expect(run.retries, 'the result counts ClickHouse retries').toBe(0);
      const lost = proxy.stats.lostOnPurpose.map((r) => decodeURIComponent(r.url.split('?')[0]!).replace(/^.*\/lake\//, ''));
      expect(lost).toEqual(expect.arrayContaining(['runs/.lock-run_id=run-1', 'runs/run_id=run-1/manifest.json']));
      expect(lost.filter((u) => u === 'runs/.lock-run_id=run-1').length, 'the create and a confirming replace').toBeGreaterThanOrEqual(2);
      expect((await verifyLakeDir(run.run_dir)).ok).toBe(true);
      // The CLI says so, one line each.
      // (Started, not run to completion synchronously: the proxy lives in this process's event loop.)
      const cli = await startQuantbot(exportArgs(s3.fresh('lost-answer-cli'), 'cli'), { ...cliEnv, AWS_ENDPOINT_URL: proxy.url }).done;
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stderr).toMatch(/^quantbot lake: connection to the object store lost; retrying in \d+ ms, retry 1 of 5$/m);
      // The lease was released: the run can be exported again at once.
      const again = await exportRunSlices({ ...runConfig(db, run.run_dir.replace(/\/lake\/runs\/.*$/, ''), alerts), overwrite: true });
      expect((await verifyLakeDir(again.run_dir)).ok).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('object-store failures are coded, say what to check, and never show the secret key', async () => {
    const secret = awsEnv().AWS_SECRET_ACCESS_KEY!;
    // Two attempts (the AWS SDKs' way to say one retry), so the budget runs out in well under a second.
    const unreachable = quantbot(exportArgs(s3.fresh('down'), 'x'), { ...cliEnv, AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_MAX_ATTEMPTS: '2' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('OBJECT_STORE_UNREACHABLE');
    expect(unreachable.stderr).toContain('AWS_ENDPOINT_URL');
    expect(unreachable.stderr).toMatch(/gave up after 2 attempts over \d+\.\d s \(object_store\.retries 1, object_store\.retry_max_wait 120 s\)/);

    const noBucket = quantbot(exportArgs('s3://no-such-bucket-here/p', 'x'), cliEnv);
    expect(noBucket.code).toBe(1);
    expect(noBucket.stderr).toMatch(/OBJECT_STORE: .*bucket does not exist/);

    const json = quantbot([...exportArgs('s3://no-such-bucket-here/p', 'x'), '--format', 'json'], cliEnv);
    expect(JSON.parse(json.stderr).error.code).toBe('OBJECT_STORE');

    const wrongScheme = quantbot(exportArgs('gs://bucket/p', 'x'), cliEnv);
    expect(wrongScheme.code).toBe(2);
    expect(wrongScheme.stderr).toContain('s3://');

    for (const r of [unreachable, noBucket, json, wrongScheme]) {
      expect(r.stderr + r.stdout).not.toContain(secret);
    }
    // A failed export frees its run at once: fixing the cause and running again is not RUN_LOCKED.
    const root = s3.fresh('retry');
    const failed = quantbot(exportArgs(root, 'retry'), { ...cliEnv, CLICKHOUSE_PORT: '1', CLICKHOUSE_RETRIES: '0' });
    expect(failed.stderr).toContain('CLICKHOUSE_UNREACHABLE');
    const retried = quantbot(exportArgs(root, 'retry'), cliEnv);
    expect(retried.code, retried.stderr).toBe(0);

    const err = await rejection(verifyLakeDir('s3://quantbot-test/not-a-lake'));
    expect(err.code).toBe('INVALID_CONFIG');
  });

  it('refused credentials are OBJECT_STORE_AUTH, for exports and verify alike', async () => {
    // A second moto that checks credentials (it knows no keys, so every request is refused as S3 refuses a wrong key).
    const port = await new Promise<number>((res) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => res(p));
      });
    });
    const moto = spawn(join(dirname(process.env.S3_TEST_PYTHON!), 'moto_server'), ['-H', '127.0.0.1', '-p', String(port)], {
      env: { ...process.env, INITIAL_NO_AUTH_ACTION_COUNT: '0' },
      stdio: 'ignore',
    });
    try {
      const endpoint = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 100; i++) {
        if (await fetch(`${endpoint}/moto-api/`).then((r) => r.ok, () => false)) break;
        await sleep(100);
      }
      const env: Record<string, string> = { ...cliEnv, AWS_ENDPOINT_URL: endpoint };
      const exported = quantbot(exportArgs('s3://locked-bucket/p', 'x'), env);
      expect(exported.code).toBe(1);
      expect(exported.stderr).toContain('OBJECT_STORE_AUTH');
      expect(exported.stderr).toContain('AWS_SECRET_ACCESS_KEY');
      const verified = quantbot(['lake', 'verify', 's3://locked-bucket/p/lake/runs/run_id=x'], env);
      expect(verified.code).toBe(1);
      expect(verified.stderr).toContain('OBJECT_STORE_AUTH');
      for (const r of [exported, verified]) expect(r.stderr + r.stdout).not.toContain(env.AWS_SECRET_ACCESS_KEY!);
    } finally {
      moto.kill();
    }
  });

  it('the object_store block wins over the environment, and a directory data_root refuses it', async () => {
    const aws = awsEnv();
    const block = {
      endpoint: aws.AWS_ENDPOINT_URL!, allow_http: true, region: aws.AWS_REGION!,
      access_key_id: aws.AWS_ACCESS_KEY_ID!, secret_access_key: aws.AWS_SECRET_ACCESS_KEY!,
    };
    const ok = await exportRunSlices({ ...runConfig(db, s3.fresh('block'), alerts), object_store: block });
    expect((await verifyLakeDir(ok.run_dir)).ok).toBe(true);
    // The environment points at the live server; the block's endpoint is what is used.
    const down = await rejection(exportRunSlices({ ...runConfig(db, s3.fresh('block-down'), alerts), object_store: { ...block, endpoint: 'http://127.0.0.1:1', retries: 0 } }));
    expect(down.code).toBe('OBJECT_STORE_UNREACHABLE');
    expect(down.message).not.toContain(block.secret_access_key);
    const local = await rejection(exportRunSlices({ ...runConfig(db, tempDir('block-local'), alerts), object_store: block }));
    expect(local.code).toBe('INVALID_CONFIG');
    expect(local.message).toContain('object_store');
  });
});
