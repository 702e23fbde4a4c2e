/**
 * The places a lake can live, for suites that run against each: a local directory and an S3 bucket (the
 * moto server that scripts/test.sh starts). What a suite reads back from S3 goes through pyarrow's S3
 * filesystem (support/s3tool.py), an independent client, into a local directory that DuckDB then reads.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tempDir } from './lake.js';

const TOOL = join(import.meta.dirname, 's3tool.py');

/** One kind of lake root. */
export interface LakeRoot {
  /** `local` or `s3`, for test names. */
  kind: 'local' | 's3';
  /** A fresh, empty data_root. */
  fresh(name: string): string;
  /** A local directory with the files under `dir` (a path, or an s3:// URL that an export reported). */
  local(dir: string): Promise<string>;
  /** The files under `dir`, relative, sorted (hidden names included). */
  list(dir: string): string[];
  /** Replaces one file under `dir`. */
  put(dir: string, rel: string, bytes: Buffer): void;
}

/** True when the S3 test server's variables are set (scripts/test.sh starts it). */
export const S3_AVAILABLE = Boolean(process.env.AWS_ENDPOINT_URL && process.env.S3_TEST_BUCKET && process.env.S3_TEST_PYTHON);

/** Runs the pyarrow tool and returns its standard output. */
export function s3tool(...args: string[]): string {
  return execFileSync(process.env.S3_TEST_PYTHON!, [TOOL, ...args], { encoding: 'utf8' });
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const go = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) go(p);
      else out.push(relative(dir, p));
    }
  };
  go(dir);
  return out.sort();
}

const LOCAL: LakeRoot = {
  kind: 'local',
  fresh: (name) => tempDir(`lake-${name}`),
  local: async (dir) => dir,
  list: walk,
  put: (dir, rel, bytes) => writeFileSync(join(dir, rel), bytes),
};

let serial = 0;
const S3: LakeRoot = {
  kind: 's3',
  fresh: (name) => `s3://${process.env.S3_TEST_BUCKET}/${name}-${process.pid}-${Date.now()}-${serial++}`,
  local: async (url) => {
    const dir = tempDir('s3-fetch');
    s3tool('fetch', url, dir);
    return dir;
  },
  list: (url) => s3tool('list', url).split('\n').filter(Boolean),
  put: (url, rel, bytes) => {
    const file = join(tempDir('s3-put'), 'object');
    writeFileSync(file, bytes);
    s3tool('put', `${url}/${rel}`, file);
  },
};

/**
 * The roots a parameterised suite runs against. S3 is required when `QUANTBOT_REQUIRE_S3=1` (scripts/test.sh
 * sets it); elsewhere a missing server drops the S3 half with a printed reason.
 */
export function lakeRoots(): LakeRoot[] {
  if (S3_AVAILABLE) return [LOCAL, S3];
  if (process.env.QUANTBOT_REQUIRE_S3 === '1') throw new Error('QUANTBOT_REQUIRE_S3=1 but the S3 test server variables are not set; run scripts/s3-server.sh start');
  console.log('S3 half of the lake suites skipped: AWS_ENDPOINT_URL/S3_TEST_BUCKET not set (scripts/s3-server.sh start sets them)');
  return [LOCAL];
}

/** A file of a directory as bytes, wherever it lives. */
export async function readUnder(root: LakeRoot, dir: string, rel: string): Promise<Buffer> {
  return readFileSync(join(await root.local(dir), rel));
}

/**
 * True when the S3 server is there for suites about S3 alone; prints why not otherwise (and fails when
 * `QUANTBOT_REQUIRE_S3=1`).
 */
export function s3Suite(): boolean {
  return lakeRoots().some((r) => r.kind === 's3');
}

/** The AWS variables of the test server, for CLI child processes (which get no other environment). */
export function awsEnv(): Record<string, string> {
  const names = ['AWS_ENDPOINT_URL', 'AWS_ALLOW_HTTP', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION'];
  return Object.fromEntries(names.filter((n) => process.env[n]).map((n) => [n, process.env[n]!]));
}

/** The S3 root kind. */
export function s3Root(): LakeRoot {
  return S3;
}
