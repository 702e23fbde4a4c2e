/** Access to the throwaway ClickHouse that scripts/test.sh starts; tests never start one themselves. */
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
