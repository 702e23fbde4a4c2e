/** ClickHouse connection settings for the CLI: the original exporter's environment variables, or a URL. */
import { InvalidArgumentError } from 'commander';

/** The connection block of the export config. */
export interface CliConnection {
  host: string;
  port: number;
  database: string;
  table: string;
  user: string;
  password: string;
}

/** From `CLICKHOUSE_HOST` (localhost), `CLICKHOUSE_PORT` (HTTP, 8123), `CLICKHOUSE_DATABASE` (quantbot),
 * `CLICKHOUSE_USER` (default) and `CLICKHOUSE_PASSWORD`. */
export function connectionFromEnv(env: NodeJS.ProcessEnv, table: string): CliConnection {
  const port = env.CLICKHOUSE_PORT ? Number(env.CLICKHOUSE_PORT) : 8123;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`CLICKHOUSE_PORT must be a port number (the HTTP interface, usually 8123), got "${env.CLICKHOUSE_PORT}"`);
  }
  return {
    host: env.CLICKHOUSE_HOST || 'localhost',
    port,
    database: env.CLICKHOUSE_DATABASE || 'quantbot',
    table,
    user: env.CLICKHOUSE_USER || 'default',
    password: env.CLICKHOUSE_PASSWORD ?? '',
  };
}

/** From `http://user:password@host:port/database` (or `?database=`); unspecified parts fall back to `base`. */
export function connectionFromUrl(url: string, base: CliConnection): CliConnection {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`--clickhouse-url "${url}" is not a URL; use http://user:password@host:8123/database`);
  }
  if (parsed.protocol !== 'http:') {
    throw new InvalidArgumentError(`--clickhouse-url must use http:// (the HTTP interface), got ${parsed.protocol}`);
  }
  const database = parsed.searchParams.get('database') || decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, '')) || base.database;
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port ? Number(parsed.port) : 8123,
    database,
    table: base.table,
    user: parsed.username ? decodeURIComponent(parsed.username) : base.user,
    password: parsed.password ? decodeURIComponent(parsed.password) : base.password,
  };
}
