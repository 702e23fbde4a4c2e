import { describe, expect, it } from 'vitest';
import {
  computeMintBucket,
  computeWindowSlice,
  errorCodes,
  floorToInterval,
  intervalToSeconds,
  parseWindowSpec,
} from '#native';
import { LAKE_ERROR_CODES, isLakeError } from '../lib/errors.js';
import { thrown } from './support/errors.js';

describe('the lake rules through the addon', () => {
  it('computes mint buckets', () => {
    expect(computeMintBucket('So11111111111111111111111111111111111111112')).toBe('35');
    expect(computeMintBucket('EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v')).toBe('9a');
    expect(computeMintBucket('Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB')).toBe('54');
    expect(computeMintBucket('DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263')).toBe('d5');
    expect(computeMintBucket('mint1')).toBe('4d');
    expect(computeMintBucket('')).toBe('da');
    expect(computeMintBucket('a')).toBe('86');
    expect(computeMintBucket('abc')).toBe('a9');
  });

  it('floors to the interval', () => {
    expect(floorToInterval(1609459200000, 60)).toBe(1609459200000);
    expect(floorToInterval(1609459230000, 60)).toBe(1609459200000);
    expect(floorToInterval(1609459259000, 60)).toBe(1609459200000);
    expect(floorToInterval(1609459200123, 1)).toBe(1609459200000);
    expect(floorToInterval(1609459320000, 300)).toBe(1609459200000);
    expect(floorToInterval(-1, 60)).toBe(-60000);
  });

  it('computes window slices', () => {
    expect(computeWindowSlice(1609459200000, 60, 52, 4948)).toEqual({
      anchorTsMs: 1609459200000,
      startTsMs: 1609456080000,
      endTsMs: 1609756140000,
    });
    expect(computeWindowSlice(1609459230000, 60, 10, 10)).toEqual({
      anchorTsMs: 1609459200000,
      startTsMs: 1609458600000,
      endTsMs: 1609459860000,
    });
  });

  it('parses window specs and intervals', () => {
    expect(parseWindowSpec('pre52_post4948')).toEqual({ preCandles: 52, postCandles: 4948 });
    expect(parseWindowSpec('pre10_post20')).toEqual({ preCandles: 10, postCandles: 20 });
    const intervals: Array<[string, number]> = [
      ['1s', 1], ['5s', 5], ['60s', 60], ['1m', 60], ['5m', 300], ['15m', 900], ['1h', 3600], ['4h', 14400], ['60', 60],
    ];
    for (const [spec, seconds] of intervals) expect(intervalToSeconds(spec)).toBe(seconds);
  });
});

describe('coded errors cross the boundary (sync)', () => {
  it.each(['invalid', 'pre52', 'post4948', 'pre-5_post10', 'pre10_post20_post30'])('window spec %s', (spec) => {
    const err = thrown(() => parseWindowSpec(spec));
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.message).toContain('pre<N>_post<M>');
    expect(isLakeError(err)).toBe(true);
  });

  it.each(['0', '0m', '-1m', '1.5m', 'abc', ''])('interval %s', (spec) => {
    expect(thrown(() => intervalToSeconds(spec)).code).toBe('INVALID_CONFIG');
  });

  it('rejects non-integer, negative and non-finite numbers that napi would silently coerce', () => {
    expect(thrown(() => floorToInterval(1.5, 60)).code).toBe('INVALID_CONFIG');
    expect(thrown(() => floorToInterval(1000, 0)).code).toBe('INVALID_CONFIG');
    expect(thrown(() => floorToInterval(1000, -60)).code).toBe('INVALID_CONFIG');
    expect(thrown(() => floorToInterval(Number.NaN, 60)).code).toBe('INVALID_CONFIG');
    expect(thrown(() => computeWindowSlice(0, 60, -1, 10)).code).toBe('INVALID_CONFIG');
    expect(thrown(() => computeWindowSlice(0, 60, 1e12, 10)).code).toBe('INVALID_CONFIG');
    expect(thrown(() => computeWindowSlice(0, 60.5, 1, 10)).code).toBe('INVALID_CONFIG');
  });

  it('lists exactly the documented codes', () => {
    expect(errorCodes()).toEqual([...LAKE_ERROR_CODES]);
  });

  it('#native (native.js, which turns a missing binary into ADDON_NOT_FOUND) exports exactly what the generated loader does', async () => {
    const generated = Object.keys(await import('../index.js')).filter((name) => !name.startsWith('__'));
    const wrapped = Object.keys(await import('#native'));
    expect(wrapped.sort()).toEqual(generated.sort());
    expect(wrapped.length).toBeGreaterThan(10);
  });
});
