// Stages and packs the two npm packages (see scripts/pack.sh): `node scripts/pack.mjs <binary> <out dir>`.
// The repository's package.json stays as contributors need it (private, dev tools, scripts); the packed one is
// what users install: the runtime files, `commander` and `zod`, and the platform package as an optional
// dependency of the same version, which is how napi-rs packages pick their binary at install time.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [binary, out] = process.argv.slice(2);
if (!binary || !out) {
  console.error('usage: node scripts/pack.mjs <release binary> <out dir>');
  process.exit(2);
}
const root = JSON.parse(readFileSync('package.json', 'utf8'));
const platformDir = 'npm/linux-x64-gnu';
const platform = JSON.parse(readFileSync(join(platformDir, 'package.json'), 'utf8'));
const stage = mkdtempSync(join(tmpdir(), 'quantbot-lake-pack-'));
const json = (o) => `${JSON.stringify(o, null, 2)}\n`;

/** `npm pack` of a staged directory into `out`; returns the tarball's file name. */
function pack(dir) {
  const res = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: dir, encoding: 'utf8' }));
  return res[0].filename;
}

try {
  // The platform package: the binary, named as the loader in index.js requires it.
  const p = join(stage, 'platform');
  mkdirSync(p);
  copyFileSync(binary, join(p, platform.main));
  writeFileSync(join(p, 'package.json'), json({ ...platform, version: root.version, publishConfig: { access: 'public' } }));
  writeFileSync(
    join(p, 'README.md'),
    `# ${platform.name}\n\nThe linux-x64-gnu binary (glibc >= 2.17) of [${root.name}](https://www.npmjs.com/package/${root.name}). ` +
      `Install ${root.name}, not this package: npm picks it as an optional dependency.\n`,
  );
  copyFileSync('LICENSE', join(p, 'LICENSE'));

  // The main package: loader, types, compiled TypeScript.
  const m = join(stage, 'main');
  mkdirSync(m);
  for (const f of ['index.js', 'index.d.ts', 'README.md', 'LICENSE']) copyFileSync(f, join(m, f));
  cpSync('dist/lib', join(m, 'dist/lib'), { recursive: true });
  const { private: _private, devDependencies: _dev, scripts: _scripts, ...published } = root;
  writeFileSync(
    join(m, 'package.json'),
    json({ ...published, optionalDependencies: { [platform.name]: root.version }, publishConfig: { access: 'public' } }),
  );

  const tarballs = [pack(p), pack(m)];
  for (const t of tarballs) console.log(join(out, t));
} finally {
  rmSync(stage, { recursive: true, force: true });
}
