/** A QuantBot-shaped candle table in the test ClickHouse, and independent expectations computed from it. */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { chQuery, freshDatabase } from './clickhouse.js';

export const T0 = 1_609_459_200; // 2021-01-01T00:00:00Z, seconds
export const MINUTE_MS = 60_000;

/** Mints of the fixture: base58-like addresses plus awkward ones. */
export const MINTS = [
  'So11111111111111111111111111111111111111112',
  'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v',
  'Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB',
  'DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263',
  "quote'mint",
  'back\\slash',
  ...Array.from({ length: 14 }, (_, i) => `Mint${String(i).padStart(3, '0')}pump`),
];

/** A ClickHouse string literal, escaped here (not by the code under test). */
export function lit(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Creates `<db>.ohlcv_candles` (ReplacingMergeTree(ingested_at)) with two days of 1m candles per mint, every
 * 11th minute missing, re-ingested duplicates with newer prices, and rows of another chain and interval. */
export async function candleFixture(prefix: string, engine = 'ReplacingMergeTree(ingested_at)'): Promise<string> {
  const db = await freshDatabase(prefix);
  await chQuery(
    `CREATE TABLE ${db}.ohlcv_candles (token_address String, chain String, timestamp DateTime, interval_seconds UInt32, ` +
      `open Float64, high Float64, low Float64, close Float64, volume Float64, ingested_at DateTime) ` +
      `ENGINE = ${engine} ORDER BY (token_address, chain, timestamp, interval_seconds)`,
  );
  for (const [k, mint] of MINTS.entries()) {
    const m = lit(mint);
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT ${m}, 'solana', toDateTime(${T0} + number * 60), 60, ` +
        `${k} + number / 1000, ${k} + number / 1000 + 0.5, ${k} + number / 1000 - 0.5, ${k} + number / 999, number % 1000, ` +
        `toDateTime(1700000000) FROM system.numbers WHERE number % 11 != 5 LIMIT 2880`,
    );
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT ${m}, 'solana', toDateTime(${T0} + number * 60), 60, 777, 778, 776, 777.5, 1, ` +
        `toDateTime(1700000600) FROM system.numbers WHERE number >= 600 LIMIT 30`,
    );
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT ${m}, 'ethereum', toDateTime(${T0} + number * 60), 60, -1, -1, -1, -1, -1, ` +
        `toDateTime(1700000000) FROM system.numbers LIMIT 2880`,
    );
    await chQuery(
      `INSERT INTO ${db}.ohlcv_candles SELECT ${m}, 'solana', toDateTime(${T0} + number * 300), 300, -2, -2, -2, -2, -2, ` +
        `toDateTime(1700000000) FROM system.numbers LIMIT 576`,
    );
  }
  return db;
}

/** The fixture database of the enclosing `describe`: made before its tests (before the block's own `beforeAll`
 * hooks registered after this call) and dropped after them. */
export function useCandleFixture(prefix: string, engine?: string): { readonly db: string } {
  let db = '';
  beforeAll(async () => {
    db = await candleFixture(prefix, engine);
  });
  afterAll(async () => {
    if (db) await chQuery(`DROP DATABASE IF EXISTS ${db}`);
  });
  return {
    get db() {
      return db;
    },
  };
}

/** A window computed independently of the addon (docs/lake-format.md, "Rules"). */
export interface Window {
  mint: string;
  anchor: number;
  start: number;
  end: number;
}

export function windowOf(mint: string, tsMs: number, intervalS: number, pre: number, post: number): Window {
  const step = intervalS * 1000;
  const anchor = Math.floor(tsMs / step) * step;
  return { mint, anchor, start: anchor - pre * step, end: anchor + (post + 1) * step };
}

/** One candle as the lake should hold it. */
export interface Candle {
  mint: string;
  ts_ms: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** The candles of the windows by plain SQL (newest version per (mint, ts)), sorted by (mint, ts). */
export async function expectedCandles(db: string, windows: Window[], intervalS = 60): Promise<Candle[]> {
  if (windows.length === 0) return [];
  const terms = windows
    .map((w) => `(token_address = ${lit(w.mint)} AND timestamp >= toDateTime(${w.start / 1000}) AND timestamp < toDateTime(${w.end / 1000}))`)
    .join(' OR ');
  const text = await chQuery(
    `SELECT token_address AS mint, toUInt32(timestamp) * 1000 AS ts_ms, argMax(open, ingested_at) AS open, ` +
      `argMax(high, ingested_at) AS high, argMax(low, ingested_at) AS low, argMax(close, ingested_at) AS close, ` +
      `argMax(volume, ingested_at) AS volume FROM ${db}.ohlcv_candles WHERE chain = 'solana' AND interval_seconds = ${intervalS} ` +
      `AND (${terms}) GROUP BY token_address, timestamp ORDER BY token_address, ts_ms FORMAT JSONEachRow`,
  );
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const r = JSON.parse(line) as Record<string, string | number>;
      return {
        mint: String(r.mint),
        ts_ms: Number(r.ts_ms),
        open: Number(r.open),
        high: Number(r.high),
        low: Number(r.low),
        close: Number(r.close),
        volume: Number(r.volume),
      };
    });
}

/** The bucket of a mint, computed with node's own SHA-1. */
export function bucketOf(mint: string): string {
  return createHash('sha1').update(mint, 'utf8').digest('hex').slice(0, 2);
}
