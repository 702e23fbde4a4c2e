// Every bucket write sleeps 300 ms in this file's process (a debug-build fail point), so an abort lands mid-export.
process.env.QUANTBOT_LAKE_FAILPOINT = 'export.write_mint:sleep=300';

import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportRunSlices, type LakeProgressEvent } from '#native';
import { rejection } from './support/errors.js';
import { MINTS, T0, useCandleFixture } from './support/fixture.js';
import { runConfig, tempDir } from './support/lake.js';

function runsLeft(root: string): string[] {
  const runs = join(root, 'lake', 'runs');
  return existsSync(runs) ? readdirSync(runs).filter((n) => !n.startsWith('.lock-')) : [];
}

describe('cancellation', () => {
  let db: string;
  let work: string;
  let alerts: string;

  const fixture = useCandleFixture('cancel');
  beforeAll(async () => {
    db = fixture.db;
    work = tempDir('lake-cancel');
    alerts = join(work, 'alerts.csv');
    writeFileSync(alerts, ['mint,ts', ...MINTS.map((m) => `${m},${T0 + 600}`)].join('\n') + '\n');
  });

  it('an already aborted signal rejects with CANCELLED and leaves nothing', async () => {
    const root = join(work, 'pre-aborted');
    const err = await rejection(exportRunSlices(runConfig(db, root, alerts), { signal: AbortSignal.abort() }));
    expect(err.code).toBe('CANCELLED');
    expect(runsLeft(root)).toEqual([]);
  });

  it('aborting mid-export stops within a second, publishes nothing and removes staging', async () => {
    const root = join(work, 'mid');
    const controller = new AbortController();
    let abortedAt = 0;
    const events: LakeProgressEvent[] = [];
    const started = Date.now();
    const err = await rejection(
      exportRunSlices(runConfig(db, root, alerts, { concurrency: 1 }), {
        signal: controller.signal,
        onProgress: (e) => {
          events.push(e);
          if (e.phase === 'exporting' && !abortedAt) {
            abortedAt = Date.now();
            controller.abort();
          }
        },
      }),
    );
    const stoppedAfter = Date.now() - abortedAt;
    expect(err.code).toBe('CANCELLED');
    expect(abortedAt).toBeGreaterThan(0);
    expect(stoppedAfter).toBeLessThan(1000);
    // Without the abort the export needs at least one 300 ms sleep per mint.
    const mints = events.find((e) => e.phase === 'exporting')!.mints_total;
    expect(mints).toBeGreaterThan(10);
    expect(Date.now() - started).toBeLessThan(mints * 300);
    expect(runsLeft(root)).toEqual([]);
  });

  it('the same run exports fine afterwards', async () => {
    const root = join(work, 'mid');
    const result = await exportRunSlices(runConfig(db, root, alerts, { concurrency: 4 }));
    expect(result.alerts).toBe(MINTS.length);
    expect(runsLeft(root)).toEqual(['run_id=run-1']);
  });
});
