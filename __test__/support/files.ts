/**
 * Temp directories and file trees for tests, with nothing but Node's own modules: the package test imports only
 * this, so it runs where the dev dependencies' native parts (DuckDB) do not (Alpine, Windows runners).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const created: string[] = [];

/** A fresh temp directory, removed after the test file (see `removeTempDirs`). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  created.push(dir);
  return dir;
}

/** Removes every directory `tempDir` made; `LAKE_TEST_KEEP=1` keeps them for a look after a failure. */
export function removeTempDirs(): void {
  if (process.env.LAKE_TEST_KEEP === '1') {
    if (created.length) console.log(`kept test directories: ${created.join(' ')}`);
    return;
  }
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Every file under a directory with its bytes, keyed by relative path. */
export function filesUnder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}
