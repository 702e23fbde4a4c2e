/** `quantbot lake …`: the command line of the lake exporter. Exit codes: 0 ok, 1 export error, 2 usage error. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isLakeError } from '../errors.js';
import { CONFIG_FACTS as F } from '../schemas.js';
import { LakeExporterService } from '../service.js';
import { connectionFromEnv, connectionFromUrl } from './clickhouse-env.js';
import { FORMATS, renderCorpus, renderSummary, renderVerify, summaryOf, type Format } from './output.js';
import { progressBar } from './progress-bar.js';
import { generateRunId } from './run-id.js';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
      throw new InvalidArgumentError(`${name} must be a whole number greater than 0.`);
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
    .option('--data-root <dir>', 'directory holding lake/', 'data')
    .option('--chain <chain>', dflt('chain to filter on', F.chain))
    .addOption(compressionOption())
    .option('--target-file-mb <mb>', dflt('roll part files before they pass this size', F.target_file_mb.default), positiveInt('--target-file-mb'));
}

/** What both exports take about the server they read, and how they report. */
function withServerOptions(command: Command): Command {
  return command
    .addOption(formatOption())
    .option('--clickhouse-url <url>', 'http://user:password@host:8123/database (overrides CLICKHOUSE_*)')
    .option('--table <table>', 'candle table', 'ohlcv_candles')
    .option('--concurrency <n>', dflt('ClickHouse queries in flight', F.concurrency.default), positiveInt('--concurrency'));
}

function formatOption() {
  return new Option('--format <format>', 'output format').choices(FORMATS).default('table');
}

interface ExportFlags {
  runId?: string;
  interval: string;
  window: string;
  alerts: string;
  dataRoot: string;
  chain?: string;
  compression?: 'zstd' | 'snappy' | 'none';
  targetFileMb?: number;
  strictCoverage?: boolean;
  minRequiredPre?: number;
  targetTotal?: number;
  format: Format;
  overwrite?: boolean;
  clickhouseUrl?: string;
  table: string;
  concurrency?: number;
  source?: 'clickhouse' | 'corpus';
}

interface CorpusFlags {
  interval: string;
  dateFrom: string;
  dateTo: string;
  dataRoot: string;
  chain?: string;
  compression?: 'zstd' | 'snappy' | 'none';
  targetFileMb?: number;
  mints?: string;
  buckets?: string;
  overwrite?: boolean;
  format: Format;
  clickhouseUrl?: string;
  table: string;
  concurrency?: number;
}

function readMints(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  } catch (err) {
    throw new InvalidArgumentError(`--mints: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** Builds the `quantbot` program; `io` is injectable so tests can run it in-process. */
export function buildProgram(io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WriteStream; env: NodeJS.ProcessEnv }): Command {
  const service = new LakeExporterService();
  const connection = (flags: { table: string; clickhouseUrl?: string }) => {
    const fromEnv = connectionFromEnv(io.env, flags.table);
    return flags.clickhouseUrl ? connectionFromUrl(flags.clickhouseUrl, fromEnv) : fromEnv;
  };
  const program = new Command('quantbot').description('QuantBot tools').exitOverride().showHelpAfterError();
  program.configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  const lake = program
    .command('lake')
    .description('Parquet Lake v1: export alert windows of OHLCV candles from ClickHouse, and verify sealed runs')
    .exitOverride();
  lake.addHelpText(
    'after',
    `
ClickHouse connection (unless --clickhouse-url is given):
  CLICKHOUSE_HOST (localhost), CLICKHOUSE_PORT (HTTP interface, 8123), CLICKHOUSE_DATABASE (quantbot),
  CLICKHOUSE_USER (default), CLICKHOUSE_PASSWORD

Output: <data-root>/lake/runs/run_id=<id>/{manifest.json, inputs/alerts.parquet, outputs/coverage.parquet,
  slices/ohlcv/interval=<i>/window=<w>/mint_bucket=<bb>/part-NNNN.parquet}
  <data-root>/lake/corpus/ohlcv/interval=<i>/date=<YYYY-MM-DD>/{manifest.json, mint_bucket=<bb>/part-NNNN.parquet}

Exit codes: 0 success, 1 export or verification failure (code and message on stderr), 2 usage error.`,
  );

  const exportRun = lake
    .command('export-run-slices')
    .description('export the candles around each alert into a sealed run of the lake')
    .option('--run-id <id>', 'run id (default: lake-export_lake_all_<yyyyMMddHHmmss>_<8 hex>)')
    .requiredOption('--interval <interval>', 'candle interval: <N>s, <N>m, <N>h, <N>d or seconds, e.g. 1m')
    .requiredOption('--window <window>', 'window around each alert: pre<N>_post<M>, e.g. pre52_post4948')
    .requiredOption('--alerts <path>', 'alerts file (.parquet or .csv)');
  withServerOptions(withOutputOptions(exportRun))
    .option('--strict-coverage', 'drop alerts below --min-required-pre / --target-total')
    .option('--min-required-pre <n>', dflt('strict mode: candles needed before the alert', F.min_required_pre.default), positiveInt('--min-required-pre'))
    .option('--target-total <n>', dflt('strict mode: candles needed in total', F.target_total.default), positiveInt('--target-total'))
    .option('--overwrite', 'replace an existing run with the same id (atomically)')
    .addOption(
      new Option('--source <source>', dflt('read candles from ClickHouse or from the lake\'s own sealed corpus (see export-corpus)', F.source.default))
        .choices(F.source.values),
    )
    .exitOverride()
    .action(async (flags: ExportFlags) => {
      const clickhouse = flags.source === 'corpus' ? undefined : connection(flags);
      const result = await service.exportRunSlices(
        {
          data_root: flags.dataRoot,
          run_id: flags.runId ?? generateRunId(),
          interval: flags.interval,
          window: flags.window,
          alerts_path: flags.alerts,
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
        },
        { onProgress: progressBar(io.stderr) },
      );
      io.stdout.write(renderSummary(summaryOf(result), flags.format));
    });

  const exportCorpus = lake
    .command('export-corpus')
    .description('export every candle of an interval for each UTC day in [--date-from, --date-to), one sealed day at a time')
    .requiredOption('--interval <interval>', 'candle interval, e.g. 1m')
    .requiredOption('--date-from <date>', 'first UTC day, YYYY-MM-DD')
    .requiredOption('--date-to <date>', 'day after the last one, YYYY-MM-DD (exclusive)');
  withServerOptions(withOutputOptions(exportCorpus))
    .option('--mints <file>', 'only the mints listed in this file, one per line')
    .option('--buckets <range>', 'only these buckets, e.g. 00-3f: this machine\'s shard of a multi-machine export')
    .option('--overwrite', 're-export days that are already sealed and intact')
    .exitOverride()
    .action(async (flags: CorpusFlags) => {
      const result = await service.exportCorpus(
        {
          data_root: flags.dataRoot,
          interval: flags.interval,
          date_from: flags.dateFrom,
          date_to: flags.dateTo,
          chain: flags.chain,
          compression: flags.compression,
          target_file_mb: flags.targetFileMb,
          mint_filter: flags.mints ? readMints(flags.mints) : undefined,
          buckets: flags.buckets,
          overwrite: flags.overwrite,
          concurrency: flags.concurrency,
          clickhouse: connection(flags),
        },
        { onProgress: progressBar(io.stderr) },
      );
      io.stdout.write(renderCorpus(result, flags.format));
    });

  lake
    .command('verify')
    .description('recompute the hashes, sizes, row counts and seal of a sealed run; exit 0 only when intact')
    .argument('<run_dir>', 'a run directory, e.g. data/lake/runs/run_id=<id>')
    .addOption(formatOption())
    .exitOverride()
    .action(async (runDir: string, flags: { format: Format }) => {
      const report = await service.verifyRun(runDir);
      io.stdout.write(renderVerify(report, flags.format));
      if (!report.ok) process.exitCode = EXIT_FAILED;
    });
  return program;
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: string[], io = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  process.exitCode = EXIT_OK;
  try {
    await buildProgram(io).parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? EXIT_OK);
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help'
        ? EXIT_OK
        : EXIT_USAGE;
    }
    if (err instanceof InvalidArgumentError) {
      io.stderr.write(`error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (isLakeError(err)) {
      io.stderr.write(`quantbot lake: ${err.code}: ${err.message}\n`);
      return EXIT_FAILED;
    }
    io.stderr.write(`quantbot lake: INTERNAL: ${err instanceof Error ? err.stack : String(err)}\n`);
    return EXIT_FAILED;
  }
}
