/** `quantbot lake …`: the command line of the lake exporter.
 *
 * Exit codes: 0 ok, 1 export or verification failure, 2 usage error (the command line or a config value),
 * 130/143 after Ctrl-C/SIGTERM stopped an export that cleaned up after itself. Every failure is one line on
 * stderr, `quantbot lake: CODE: message`, or with `--format json` one JSON object `{"error":{"code","message"}}`.
 * No output ever contains a password. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
// The facts come straight from the addon: loading the service (and zod) waits until a command runs, so that
// `--help` and `--version` answer at once.
import { configFacts } from '#native';
import { connectionOf, redactUrl, type ConnectionFlags } from './clickhouse-env.js';
import { SIGNAL_EXIT, watchInterrupts } from './interrupt.js';
import { FORMATS, renderCorpus, renderCorpusStatus, renderSummary, renderVerify, summaryOf, type Format } from './output.js';
import { progressBar } from './progress-bar.js';
import type { ExportCallOptions } from '../service.js';
import { generateRunId } from './run-id.js';
import { speakFlags, UsageError } from './usage.js';
import { packageVersion } from './version.js';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

const F = configFacts();

function wholeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${name} must be a whole number, got "${value}".`);
    }
    return n;
  };
}

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
      throw new InvalidArgumentError(`${name} must be a whole number greater than 0, got "${value}".`);
    }
    return n;
  };
}

/** Says the default in the help without passing it: absent flags fall through to the config schema's default. */
function dflt(description: string, value: string | number): string {
  return `${description} (default: ${value})`;
}

function compressionOption() {
  return new Option('--compression <codec>', dflt('Parquet compression', F.compression.default)).choices(F.compression.values);
}

/** What both exports take about the files they write. */
function withOutputOptions(command: Command): Command {
  return command
    .option('--data-root <dir>', 'directory holding lake/, or s3://bucket/prefix (credentials from AWS_* variables)', 'data')
    .option('--chain <chain>', dflt('chain to filter on', F.chain))
    .addOption(compressionOption())
    .option('--target-file-mb <mb>', dflt('roll part files before they pass this size', F.target_file_mb.default), positiveInt('--target-file-mb'));
}

/** What both exports take about the server they read, and how they report. */
function withServerOptions(command: Command): Command {
  return command
    .addOption(formatOption())
    .option('--clickhouse-url <url>', 'http://user:password@host:8123/database or https://…:8443/… (overrides CLICKHOUSE_*)')
    .option('--ca-cert <pem>', 'HTTPS: trust only the CA certificate(s) in this PEM file instead of the public CAs (CLICKHOUSE_CA_CERT)')
    .option('--connect-timeout <s>', dflt('seconds to set up a connection, TCP and TLS (CLICKHOUSE_CONNECT_TIMEOUT)', F.connect_timeout.default), positiveInt('--connect-timeout'))
    .option('--receive-timeout <s>', dflt('seconds any wait for bytes of an answer may take, the first byte included (CLICKHOUSE_RECEIVE_TIMEOUT)', F.send_receive_timeout.default), positiveInt('--receive-timeout'))
    .option('--retries <n>', dflt('retries of a ClickHouse request after a lost connection, a restart or a busy server; 0 fails at once (CLICKHOUSE_RETRIES)', F.retries.default), wholeInt('--retries'))
    .option('--retry-max-wait <s>', dflt('seconds one request may spend waiting between its retries (CLICKHOUSE_RETRY_MAX_WAIT)', F.retry_max_wait.default), wholeInt('--retry-max-wait'))
    .option('--table <table>', 'candle table', 'ohlcv_candles')
    .option('--concurrency <n>', dflt('ClickHouse queries in flight', F.concurrency.default), positiveInt('--concurrency'));
}

function formatOption() {
  return new Option('--format <format>', 'output format').choices(FORMATS).default('table');
}

/** Required flags are checked here, after parsing, rather than by commander: commander reports a missing required
 * flag before an unknown one, so a typo (`--windw`) would be blamed on the flag it was meant to be. */
function requireFlags(command: string, flags: object, required: Array<[key: string, flag: string]>): void {
  const missing = required.filter(([key]) => (flags as Record<string, unknown>)[key] === undefined).map(([, flag]) => flag);
  if (missing.length) {
    throw new UsageError(`${command} needs ${missing.join(', ')}`);
  }
}

interface ExportFlags extends ConnectionFlags {
  runId?: string;
  interval?: string;
  window?: string;
  alerts?: string;
  dataRoot: string;
  chain?: string;
  compression?: 'zstd' | 'snappy' | 'none';
  targetFileMb?: number;
  strictCoverage?: boolean;
  minRequiredPre?: number;
  targetTotal?: number;
  format: Format;
  overwrite?: boolean;
  concurrency?: number;
  source?: 'clickhouse' | 'corpus';
  requireFresh?: boolean;
}

interface CorpusFlags extends ConnectionFlags {
  interval?: string;
  dateFrom?: string;
  dateTo?: string;
  dataRoot: string;
  chain?: string;
  compression?: 'zstd' | 'snappy' | 'none';
  targetFileMb?: number;
  mints?: string;
  buckets?: string;
  shard?: string;
  shards?: number;
  overwrite?: boolean;
  format: Format;
  concurrency?: number;
}

function readMints(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  } catch (err) {
    throw new UsageError(`--mints: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The corpus config of `export-corpus` and `corpus-status` from their flags. */
function corpusConfig(command: string, flags: CorpusFlags, env: NodeJS.ProcessEnv) {
  requireFlags(command, flags, [['interval', '--interval'], ['dateFrom', '--date-from'], ['dateTo', '--date-to']]);
  return {
    data_root: flags.dataRoot,
    interval: flags.interval!,
    date_from: flags.dateFrom!,
    date_to: flags.dateTo!,
    chain: flags.chain,
    compression: flags.compression,
    target_file_mb: flags.targetFileMb,
    mint_filter: flags.mints ? readMints(flags.mints) : undefined,
    buckets: flags.buckets,
    shard: flags.shard,
    shards: flags.shards,
    overwrite: flags.overwrite,
    concurrency: flags.concurrency,
    clickhouse: connectionOf(env, flags),
  };
}

/** What a command needs from the process: streams and environment (injectable for in-process tests). */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** Runs an export with a progress bar and Ctrl-C handling; the bar is erased before anything else is printed. */
async function withExportSession<T>(io: CliIo, work: (opts: ExportCallOptions) => Promise<T>): Promise<T> {
  const bar = progressBar(io.stderr);
  const interrupt = watchInterrupts((line) => {
    bar.clear();
    io.stderr.write(`quantbot lake: ${line}\n`);
  });
  try {
    return await work({ signal: interrupt.signal, onProgress: bar.update });
  } catch (err) {
    const sig = interrupt.received();
    throw sig ? Object.assign(err as Error, { exitCode: SIGNAL_EXIT[sig] }) : err;
  } finally {
    bar.clear();
    interrupt.dispose();
  }
}

async function loadService() {
  const { LakeExporterService } = await import('../service.js');
  return new LakeExporterService();
}

/** Builds the `quantbot` program. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('quantbot').description('QuantBot tools').exitOverride().version(packageVersion(), '-V, --version', 'print the version');
  // Commander's own error printing is replaced by ours (one line, our format, no password): see `main`.
  program.configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), outputError: () => {} });
  const lake = program
    .command('lake')
    .description('Parquet Lake v1: export alert windows of OHLCV candles from ClickHouse, and verify sealed runs')
    .exitOverride();
  lake.addHelpText(
    'after',
    `
ClickHouse connection (--clickhouse-url overrides these; flags override both):
  CLICKHOUSE_HOST (localhost), CLICKHOUSE_PORT (8123; 8443 with CLICKHOUSE_SECURE), CLICKHOUSE_DATABASE
  (quantbot), CLICKHOUSE_USER (default), CLICKHOUSE_PASSWORD, CLICKHOUSE_SECURE (1 for HTTPS),
  CLICKHOUSE_CA_CERT, CLICKHOUSE_CONNECT_TIMEOUT, CLICKHOUSE_RECEIVE_TIMEOUT

Object storage (--data-root s3://bucket/prefix): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
  AWS_REGION, AWS_ENDPOINT_URL (S3-compatible servers), AWS_ALLOW_HTTP (true for a plain-HTTP endpoint);
  exports are built under $TMPDIR and uploaded; QUANTBOT_LAKE_LEASE_SECONDS (30) bounds how long a crashed
  export keeps its run locked

Output: <data-root>/lake/runs/run_id=<id>/{manifest.json, inputs/alerts.parquet, outputs/coverage.parquet,
  slices/ohlcv/interval=<i>/window=<w>/mint_bucket=<bb>/part-NNNN.parquet}
  <data-root>/lake/corpus/ohlcv/interval=<i>/date=<YYYY-MM-DD>/{manifest.json, mint_bucket=<bb>/part-NNNN.parquet}

Errors: one line on stderr, "quantbot lake: CODE: message"; with --format json, {"error":{"code","message"}}.
Exit codes: 0 success, 1 export or verification failure, 2 usage error (a flag or a config value),
  130 (143) when Ctrl-C (SIGTERM) stopped an export; it then publishes nothing and leaves nothing behind.`,
  );

  const exportRun = lake
    .command('export-run-slices')
    .description('export the candles around each alert into a sealed run of the lake')
    .option('--run-id <id>', 'run id (default: lake-export_lake_all_<yyyyMMddHHmmss>_<8 hex>)')
    .option('--interval <interval>', 'required: candle interval, <N>s, <N>m, <N>h, <N>d or seconds, e.g. 1m')
    .option('--window <window>', 'required: window around each alert, pre<N>_post<M>, e.g. pre52_post4948')
    .option('--alerts <path>', 'required: alerts file (.parquet or .csv)');
  withServerOptions(withOutputOptions(exportRun))
    .option('--strict-coverage', 'drop alerts below --min-required-pre / --target-total')
    .option('--min-required-pre <n>', dflt('strict mode: candles needed before the alert', F.min_required_pre.default), positiveInt('--min-required-pre'))
    .option('--target-total <n>', dflt('strict mode: candles needed in total', F.target_total.default), positiveInt('--target-total'))
    .option('--overwrite', 'replace an existing run with the same id (atomically)')
    .addOption(
      new Option('--source <source>', dflt('read candles from ClickHouse or from the lake\'s own sealed corpus (see export-corpus)', F.source.default))
        .choices(F.source.values),
    )
    .option('--require-fresh', 'with --source corpus: refuse (CORPUS_STALE) days whose candles changed in ClickHouse since they were sealed')
    .exitOverride()
    .action(async (flags: ExportFlags) => {
      requireFlags('export-run-slices', flags, [['interval', '--interval'], ['window', '--window'], ['alerts', '--alerts']]);
      // A run from the corpus needs the server only to check freshness.
      const clickhouse = flags.source === 'corpus' && !flags.requireFresh ? undefined : connectionOf(io.env, flags);
      const service = await loadService();
      const result = await withExportSession(io, (opts) =>
        service.exportRunSlices(
          {
            data_root: flags.dataRoot,
            run_id: flags.runId ?? generateRunId(),
            interval: flags.interval!,
            window: flags.window!,
            alerts_path: flags.alerts!,
            chain: flags.chain,
            compression: flags.compression,
            target_file_mb: flags.targetFileMb,
            strict_coverage: flags.strictCoverage,
            min_required_pre: flags.minRequiredPre,
            target_total: flags.targetTotal,
            clickhouse,
            overwrite: flags.overwrite,
            concurrency: flags.concurrency,
            source: flags.source,
            require_fresh: flags.requireFresh,
          },
          opts,
        ),
      );
      io.stdout.write(renderSummary(summaryOf(result), flags.format));
    });

  const exportCorpus = lake
    .command('export-corpus')
    .description('export every candle of an interval for each UTC day in [--date-from, --date-to), one sealed day at a time')
    .option('--interval <interval>', 'required: candle interval, e.g. 1m')
    .option('--date-from <date>', 'required: first UTC day, YYYY-MM-DD')
    .option('--date-to <date>', 'required: day after the last one, YYYY-MM-DD (exclusive)');
  withServerOptions(withOutputOptions(exportCorpus))
    .option('--mints <file>', 'only the mints listed in this file, one per line')
    .option('--buckets <range>', 'only these buckets, e.g. 00-3f: this machine\'s shard of a multi-machine export')
    .option('--shard <K/N>', 'the K-th (from 0) of N near-equal bucket ranges, e.g. 0/4 (instead of --buckets)')
    .option('--shards <N>', 'one of N shards, the index from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array job)', wholeInt('--shards'))
    .option('--overwrite', 're-export days that are already sealed and intact')
    .exitOverride()
    .action(async (flags: CorpusFlags) => {
      const config = corpusConfig('export-corpus', flags, io.env);
      const service = await loadService();
      const result = await withExportSession(io, (opts) => service.exportCorpus(config, opts));
      io.stdout.write(renderCorpus(result, flags.format));
    });

  const corpusStatus = lake
    .command('corpus-status')
    .description('for each UTC day in [--date-from, --date-to): missing, fresh, stale (ClickHouse changed since it was sealed), damaged, or unknown; writes nothing')
    .option('--interval <interval>', 'required: candle interval, e.g. 1m')
    .option('--date-from <date>', 'required: first UTC day, YYYY-MM-DD')
    .option('--date-to <date>', 'required: day after the last one, YYYY-MM-DD (exclusive)')
    .option('--data-root <dir>', 'directory holding lake/, or s3://bucket/prefix (credentials from AWS_* variables)', 'data')
    .option('--chain <chain>', dflt('chain', F.chain))
    .option('--mints <file>', 'the mint filter the corpus was exported with, one per line')
    .option('--buckets <range>', 'the bucket range (shard) to check, e.g. 00-3f')
    .option('--shard <K/N>', 'the shard to check: the K-th (from 0) of N bucket ranges')
    .option('--shards <N>', 'the shard to check: one of N, the index from JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX', wholeInt('--shards'));
  withServerOptions(corpusStatus)
    .exitOverride()
    .action(async (flags: CorpusFlags) => {
      const config = corpusConfig('corpus-status', flags, io.env);
      const service = await loadService();
      io.stdout.write(renderCorpusStatus(await service.corpusStatus(config), flags.format));
    });

  lake
    .command('verify')
    .description('recompute the hashes, sizes, row counts and seal of a sealed run; exit 0 only when intact')
    .argument('<run_dir>', 'a run directory or corpus day, e.g. data/lake/runs/run_id=<id> or s3://bucket/prefix/lake/runs/run_id=<id>')
    .addOption(formatOption())
    .exitOverride()
    .action(async (runDir: string, flags: { format: Format }) => {
      const service = await loadService();
      const report = await service.verifyRun(runDir);
      io.stdout.write(renderVerify(report, flags.format));
      if (!report.ok) process.exitCode = EXIT_FAILED;
    });
  return program;
}

/** Secrets the user gave us (ClickHouse and AWS ones in the environment, any URL on the command line), so that no output can echo them. */
function secretsOf(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const secrets = new Set<string>();
  for (const name of ['CLICKHOUSE_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
    if (env[name]) secrets.add(env[name]);
  }
  for (const arg of argv) {
    for (const m of arg.matchAll(/:\/\/[^/@\s:]*:([^@\s]*)@/g)) {
      secrets.add(m[1]!);
      try {
        secrets.add(decodeURIComponent(m[1]!));
      } catch {
        // not percent-encoded: the raw form is already listed
      }
    }
  }
  // Scrubbing a one- or two-letter password would garble every message and hide nothing.
  return [...secrets].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
}

function scrub(message: string, secrets: string[]): string {
  let out = redactUrl(message);
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

/** `quantbot lake <command> --help`, for the command the user was running. */
function helpHint(argv: string[]): string {
  const sub = argv[0] === 'lake' && ['export-run-slices', 'export-corpus', 'corpus-status', 'verify'].includes(argv[1] ?? '') ? ` ${argv[1]}` : '';
  return argv[0] === 'lake' ? `quantbot lake${sub} --help` : 'quantbot --help';
}

/** What went wrong, how to say it, and how to exit. */
function classify(err: unknown, argv: string[]): { code: string; message: string; exit: number } {
  if (err instanceof CommanderError) {
    // commander prefixes its messages with "error: "; our line already says what it is.
    const message = err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    return { code: 'USAGE', message: `${message} (see ${helpHint(argv)})`, exit: EXIT_USAGE };
  }
  if (err instanceof UsageError) {
    const hint = err.code === 'USAGE' ? ` (see ${helpHint(argv)})` : '';
    return { code: err.code, message: `${err.message}${hint}`, exit: EXIT_USAGE };
  }
  const exitCode = (err as { exitCode?: unknown } | undefined)?.exitCode;
  const coded = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  if (typeof coded === 'string' && err instanceof Error) {
    // Messages made for the API name config fields; here the user typed flags.
    const message = speakFlags(err.message);
    if (coded === 'INVALID_CONFIG') return { code: coded, message, exit: EXIT_USAGE };
    return { code: coded, message, exit: typeof exitCode === 'number' ? exitCode : EXIT_FAILED };
  }
  return { code: 'INTERNAL', message: err instanceof Error ? (err.stack ?? err.message) : String(err), exit: EXIT_FAILED };
}

function wantsJson(argv: string[]): boolean {
  return argv.some((a, i) => a === '--format=json' || (a === '--format' && argv[i + 1] === 'json'));
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  process.exitCode = EXIT_OK;
  const secrets = secretsOf(argv, io.env);
  try {
    const program = buildProgram(io);
    // Alone, `quantbot` and `quantbot lake` are a request for help, not a mistake.
    if (argv.length === 0 || (argv.length === 1 && argv[0] === 'lake')) {
      (argv.length ? program.commands.find((c) => c.name() === 'lake')! : program).outputHelp();
      return EXIT_OK;
    }
    await program.parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? EXIT_OK);
  } catch (err) {
    if (err instanceof CommanderError && ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code)) {
      return EXIT_OK;
    }
    const { code, message, exit } = classify(err, argv);
    const said = scrub(message, secrets);
    io.stderr.write(wantsJson(argv) ? `${JSON.stringify({ error: { code, message: said } })}\n` : `quantbot lake: ${code}: ${said}\n`);
    return exit;
  }
}
