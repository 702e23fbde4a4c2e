/** Access to the throwaway ClickHouse that scripts/test.sh starts, and to a server of a test's own for tests that
 * kill it. */
import { spawnSync } from 'node:child_process';
import type { ClickhouseConnection } from '#native';

/** The server URL from the test script, or a failure naming the script to run. */
export function clickhouseUrl(): URL {
  const url = process.env.CLICKHOUSE_URL;
  if (!url) {
    throw new Error(
      'CLICKHOUSE_URL is not set: run the suite with `npm test` (scripts/test.sh starts ClickHouse), or start one with ' +
        '`eval "$(bash scripts/clickhouse-server.sh start)"` before `npx vitest`',
    );
  }
  return new URL(url);
}

/** The test server's HTTPS endpoint and the private CA that signed its certificate (scripts/clickhouse-server.sh). */
export function clickhouseHttps(): { url: URL; ca: string } {
  const url = process.env.CLICKHOUSE_HTTPS_URL;
  const ca = process.env.CLICKHOUSE_TEST_CA;
  if (!url || !ca) throw new Error('CLICKHOUSE_HTTPS_URL / CLICKHOUSE_TEST_CA are not set: start the server with scripts/clickhouse-server.sh');
  return { url: new URL(url), ca };
}

/** Runs SQL over HTTP as the `default` user and returns the body; throws with the server's text on error. */
export async function chQuery(sql: string, body?: string): Promise<string> {
  const url = clickhouseUrl();
  const target = new URL('/', url);
  target.searchParams.set('query', sql);
  // The server drops idle keep-alive connections after 3 s; a request that meets one such stale connection (after a
  // test blocked the event loop, e.g. with spawnSync) is retried once on a fresh connection.
  const send = () => fetch(target, { method: 'POST', body: body ?? '' });
  const res = await send().catch(send);
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse ${res.status}: ${text}`);
  return text;
}

/** Connection settings for the addon pointing at the test server. */
export function connection(database: string, table: string, extra: Partial<ClickhouseConnection> = {}): ClickhouseConnection {
  const url = clickhouseUrl();
  return { host: url.hostname, port: Number(url.port), database, table, user: 'default', ...extra };
}

/** A database name unique to one test file run, created fresh. */
export async function freshDatabase(prefix: string): Promise<string> {
  const name = `${prefix}_${process.pid}_${Date.now()}`;
  await chQuery(`CREATE DATABASE ${name}`);
  return name;
}

/** A ClickHouse of a test's own (scripts/clickhouse-server.sh), for tests that kill it. */
export interface OwnServer {
  url: URL;
  /** Runs SQL on it; fails the test on an error. */
  q(sql: string): Promise<void>;
  /** Kills it the way a crash does: open connections end without a word. */
  kill(): void;
  /** Starts it again on the same ports and data. */
  restart(): void;
  stop(): void;
}

/** Starts a throwaway server with the QuantBot table `quantbot.ohlcv_candles` (plain MergeTree), empty. */
export async function startOwnServer(): Promise<OwnServer> {
  const started = spawnSync('bash', ['scripts/clickhouse-server.sh', 'start'], { encoding: 'utf8' });
  if (started.status !== 0) throw new Error(`scripts/clickhouse-server.sh start failed: ${started.stderr}`);
  const own = Object.fromEntries([...started.stdout.matchAll(/export (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  let pid = Number(own.CLICKHOUSE_PID);
  const url = new URL(own.CLICKHOUSE_URL!);
  const server: OwnServer = {
    url,
    async q(sql) {
      const res = await fetch(new URL(`/?query=${encodeURIComponent(sql)}`, url), { method: 'POST' });
      if (!res.ok) throw new Error(`ClickHouse ${res.status}: ${await res.text()}`);
    },
    kill: () => process.kill(pid, 'SIGKILL'),
    restart() {
      const r = spawnSync('bash', ['scripts/clickhouse-server.sh', 'restart', own.CLICKHOUSE_TEST_DIR!], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`scripts/clickhouse-server.sh restart failed: ${r.stderr}`);
      pid = Number(/CLICKHOUSE_PID=(\d+)/.exec(r.stdout)![1]);
    },
    stop: () => void spawnSync('bash', ['scripts/clickhouse-server.sh', 'stop', own.CLICKHOUSE_TEST_DIR!]),
  };
  try {
    await server.q('CREATE DATABASE quantbot');
    await server.q(`CREATE TABLE quantbot.ohlcv_candles (token_address String, chain String, timestamp DateTime, interval_seconds UInt32, ` +
      `open Float64, high Float64, low Float64, close Float64, volume Float64) ENGINE = MergeTree ORDER BY (token_address, timestamp)`);
  } catch (err) {
    server.stop();
    throw err;
  }
  return server;
}
