// A debug-build fail point makes the bucket writer panic in this file's process.
process.env.QUANTBOT_LAKE_FAILPOINT = 'export.write_mint:panic';

import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { computeMintBucket, exportRunSlices } from '#native';
import { rejection } from './support/errors.js';
import { MINTS, T0, useCandleFixture } from './support/fixture.js';
import { runConfig, tempDir } from './support/lake.js';

describe('a Rust panic', () => {
  let db: string;

  const fixture = useCandleFixture('panic');
  beforeAll(async () => {
    db = fixture.db;
  });

  it('becomes an INTERNAL error, Node keeps running and nothing is published', async () => {
    const work = tempDir('lake-panic');
    const alerts = join(work, 'alerts.csv');
    writeFileSync(alerts, `mint,ts\n${MINTS[0]},${T0 + 600}\n`);
    const err = await rejection(exportRunSlices(runConfig(db, work, alerts)));
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('INTERNAL');
    expect(err.message).toContain('panic');
    expect(computeMintBucket('mint1')).toBe('4d');
    const runs = join(work, 'lake', 'runs');
    expect(existsSync(runs) ? readdirSync(runs).filter((n) => !n.startsWith('.lock-')) : []).toEqual([]);
  });
});
