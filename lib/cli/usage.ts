/** Usage errors: how the CLI was called, reported with the flags and variables the user typed (exit 2). */

/** A mistake in the command line or its environment. `code` is `USAGE` for the syntax, `INVALID_CONFIG` for a value. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly code: 'USAGE' | 'INVALID_CONFIG' = 'USAGE',
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Where a config field comes from on the command line. */
const FLAG_OF: Record<string, string> = {
  data_root: '--data-root',
  run_id: '--run-id',
  interval: '--interval',
  window: '--window',
  alerts_path: '--alerts',
  chain: '--chain',
  compression: '--compression',
  target_file_mb: '--target-file-mb',
  strict_coverage: '--strict-coverage',
  min_required_pre: '--min-required-pre',
  target_total: '--target-total',
  overwrite: '--overwrite',
  concurrency: '--concurrency',
  source: '--source',
  require_fresh: '--require-fresh',
  date_from: '--date-from',
  date_to: '--date-to',
  mint_filter: '--mints',
  buckets: '--buckets',
  shard: '--shard',
  shards: '--shards',
  'clickhouse.host': 'the host of --clickhouse-url (CLICKHOUSE_HOST)',
  'clickhouse.port': 'the port of --clickhouse-url (CLICKHOUSE_PORT)',
  'clickhouse.database': 'the database of --clickhouse-url (CLICKHOUSE_DATABASE)',
  'clickhouse.table': '--table',
  'clickhouse.user': 'the user of --clickhouse-url (CLICKHOUSE_USER)',
  'clickhouse.password': 'the password of --clickhouse-url (CLICKHOUSE_PASSWORD)',
  'clickhouse.connect_timeout': '--connect-timeout (CLICKHOUSE_CONNECT_TIMEOUT)',
  'clickhouse.send_receive_timeout': '--receive-timeout (CLICKHOUSE_RECEIVE_TIMEOUT)',
  'clickhouse.retries': '--retries (CLICKHOUSE_RETRIES)',
  'clickhouse.retry_max_wait': '--retry-max-wait (CLICKHOUSE_RETRY_MAX_WAIT)',
  'clickhouse.secure': 'https:// in --clickhouse-url (CLICKHOUSE_SECURE)',
  'clickhouse.ca_cert': '--ca-cert (CLICKHOUSE_CA_CERT)',
};

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Rewrites a config error so that it names flags: `invalid alerts_path …` becomes `invalid --alerts …`. Plain
 * words (`interval`, `overwrite`) are replaced only where they name a field: after `invalid`, `field`, `pass`,
 * `raise` or `set`, or before `:`. */
export function speakFlags(message: string): string {
  let out = message;
  for (const field of Object.keys(FLAG_OF).sort((a, b) => b.length - a.length)) {
    const flag = FLAG_OF[field]!;
    const f = escape(field);
    const compound = /[._]/.test(field);
    const patterns = compound
      ? // Not inside a path or a partition name (`runs/run_id=…`).
        [new RegExp(`(?<![\\w./-])${f}(?![\\w=])`, 'g')]
      : [new RegExp(`(?<=\\b(?:invalid|field|pass|raise|set) )${f}\\b`, 'g'), new RegExp(`(?<=^|; |: )${f}(?=:)`, 'g'), new RegExp(`^${f}(?= is )`, 'g')];
    for (const re of patterns) out = out.replace(re, flag);
  }
  return out;
}
