import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeClickhouse } from '#native';
import { chQuery, connection, freshDatabase } from './support/clickhouse.js';
import { rejection } from './support/errors.js';

describe('async addon call against the real ClickHouse', () => {
  let db: string;

  beforeAll(async () => {
    db = await freshDatabase('plumbing');
  });
  afterAll(async () => {
    if (db) await chQuery(`DROP DATABASE IF EXISTS ${db}`);
  });

  it('answers with the server version and clock', async () => {
    const expectedVersion = (await chQuery('SELECT version()')).trim();
    const serverNow = Number((await chQuery('SELECT toUInt32(now())')).trim());
    const info = await probeClickhouse(connection(db, 'ohlcv_candles'));
    expect(info.version).toBe(expectedVersion);
    expect(Math.abs(info.nowEpochS - serverNow)).toBeLessThan(60);
  });

  it('rejects a wrong password with CLICKHOUSE_AUTH and never echoes it', async () => {
    const err = await rejection(probeClickhouse(connection(db, 't', { user: 'tester', password: 'wrong-secret-xyz' })));
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('CLICKHOUSE_AUTH');
    expect(err.message).not.toContain('wrong-secret-xyz');
  });

  it('accepts the right password', async () => {
    const info = await probeClickhouse(connection(db, 't', { user: 'tester', password: 's3cret-pa55' }));
    expect(info.version).toMatch(/^\d+\.\d+/);
  });

  it('rejects an unreachable server with CLICKHOUSE_UNREACHABLE (async path), after its retries', async () => {
    const err = await rejection(probeClickhouse(connection(db, 't', { port: 1, retries: 0 })));
    expect(err.code).toBe('CLICKHOUSE_UNREACHABLE');
    expect(err.message).toContain('127.0.0.1:1');
    expect(err.message).not.toContain('gave up');
    const retried = await rejection(probeClickhouse(connection(db, 't', { port: 1, retries: 1 })));
    expect(retried.code).toBe('CLICKHOUSE_UNREACHABLE');
    expect(retried.message).toMatch(/cannot reach ClickHouse at http:\/\/127\.0\.0\.1:1: .*; gave up after 2 attempts over \d+\.\d s \(clickhouse\.retries 1/);
  });

  it('rejects bad identifiers with INVALID_CONFIG before any query', async () => {
    const err = await rejection(Promise.resolve().then(() => probeClickhouse(connection(`${db}; DROP DATABASE x`, 't'))));
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.message).toContain('clickhouse.database');
  });
});
