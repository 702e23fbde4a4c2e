/** ClickHouse connection settings for the CLI: the original exporter's environment variables, a URL, and flags.
 * No message made here ever contains a password. */
import { UsageError } from './usage.js';

/** The connection block of an export config. */
export interface CliConnection {
  host: string;
  port: number;
  database: string;
  table: string;
  user: string;
  password: string;
  secure: boolean;
  ca_cert?: string;
  connect_timeout?: number;
  send_receive_timeout?: number;
  retries?: number;
  retry_max_wait?: number;
}

/** Connection flags of the export commands. */
export interface ConnectionFlags {
  table: string;
  clickhouseUrl?: string;
  caCert?: string;
  connectTimeout?: number;
  receiveTimeout?: number;
  retries?: number;
  retryMaxWait?: number;
}

const HTTP_PORT = 8123;
const HTTPS_PORT = 8443;

/** `s` with the password of any `scheme://user:password@` in it replaced by `***`. */
export function redactUrl(s: string): string {
  return s.replace(/(:\/\/[^/@\s:]*:)[^@\s]*@/g, '$1***@');
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = (env[name] ?? '').trim().toLowerCase();
  if (['', '0', 'false', 'no', 'off'].includes(v)) return false;
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  throw new UsageError(`${name} must be 1/true/yes or 0/false/no, got "${env[name]}"`);
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, what = 'whole seconds'): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} must be ${what}, got "${v}"`);
  return Number(v);
}

/** From `CLICKHOUSE_HOST` (localhost), `CLICKHOUSE_PORT` (8123, or 8443 with `CLICKHOUSE_SECURE`),
 * `CLICKHOUSE_DATABASE` (quantbot), `CLICKHOUSE_USER` (default), `CLICKHOUSE_PASSWORD`, `CLICKHOUSE_SECURE`,
 * `CLICKHOUSE_CA_CERT`, `CLICKHOUSE_CONNECT_TIMEOUT`, `CLICKHOUSE_RECEIVE_TIMEOUT`, `CLICKHOUSE_RETRIES` and
 * `CLICKHOUSE_RETRY_MAX_WAIT`. */
export function connectionFromEnv(env: NodeJS.ProcessEnv, table: string): CliConnection {
  const secure = flag(env, 'CLICKHOUSE_SECURE');
  const port = env.CLICKHOUSE_PORT ? Number(env.CLICKHOUSE_PORT) : secure ? HTTPS_PORT : HTTP_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(
      `CLICKHOUSE_PORT must be a port number (the HTTP interface: usually 8123, 8443 for HTTPS), got "${env.CLICKHOUSE_PORT}"`,
    );
  }
  return {
    host: env.CLICKHOUSE_HOST || 'localhost',
    port,
    database: env.CLICKHOUSE_DATABASE || 'quantbot',
    table,
    user: env.CLICKHOUSE_USER || 'default',
    password: env.CLICKHOUSE_PASSWORD ?? '',
    secure,
    ca_cert: env.CLICKHOUSE_CA_CERT || undefined,
    connect_timeout: wholeNumber(env, 'CLICKHOUSE_CONNECT_TIMEOUT'),
    send_receive_timeout: wholeNumber(env, 'CLICKHOUSE_RECEIVE_TIMEOUT'),
    retries: wholeNumber(env, 'CLICKHOUSE_RETRIES', 'a whole number'),
    retry_max_wait: wholeNumber(env, 'CLICKHOUSE_RETRY_MAX_WAIT'),
  };
}

/** From `http(s)://user:password@host:port/database` (or `?database=`); what the URL leaves out comes from `base`. */
export function connectionFromUrl(url: string, base: CliConnection): CliConnection {
  // Written without a `user:password@` part, which redactUrl would mask: the user must see the shape.
  const example = 'https://host:8443/database or http://host:8123/database, with USER:PASSWORD@ before the host if needed';
  const port = /^[a-z]+:\/\/(?:[^/@]*@)?(?:\[[^\]]*\]|[^/:?#]*):(\d+)/i.exec(url)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw new UsageError(`--clickhouse-url: port ${port} is out of range (1-65535); ClickHouse's HTTP port is usually 8123, 8443 for HTTPS`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--clickhouse-url "${redactUrl(url)}" is not a valid URL; use ${example}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`--clickhouse-url must start with http:// or https://, got ${parsed.protocol}//; use ${example}`);
  }
  const secure = parsed.protocol === 'https:';
  const database = parsed.searchParams.get('database') || decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, '')) || base.database;
  return {
    ...base,
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port ? Number(parsed.port) : secure ? HTTPS_PORT : HTTP_PORT,
    database,
    user: parsed.username ? decodeURIComponent(parsed.username) : base.user,
    password: parsed.password ? decodeURIComponent(parsed.password) : base.password,
    secure,
  };
}

/** The connection of an export: the environment, then the URL, then the flags, each overriding the one before. */
export function connectionOf(env: NodeJS.ProcessEnv, flags: ConnectionFlags): CliConnection {
  const fromEnv = connectionFromEnv(env, flags.table);
  const conn = flags.clickhouseUrl ? connectionFromUrl(flags.clickhouseUrl, fromEnv) : fromEnv;
  return {
    ...conn,
    ca_cert: flags.caCert ?? conn.ca_cert,
    connect_timeout: flags.connectTimeout ?? conn.connect_timeout,
    send_receive_timeout: flags.receiveTimeout ?? conn.send_receive_timeout,
    retries: flags.retries ?? conn.retries,
    retry_max_wait: flags.retryMaxWait ?? conn.retry_max_wait,
  };
}
