// The addon as the rest of the package imports it (`#native`): the generated loader (index.js) picks the binary
// of this platform; where there is none, this says so in terms a user can act on (err.code ADDON_NOT_FOUND)
// instead of surfacing the loader's chain of failed requires. The exported names must equal index.js's
// (a test compares them).
import { createRequire } from 'node:module';

let binding;
try {
  binding = await import('./index.js');
} catch (cause) {
  throw addonNotFound(cause);
}

export const {
  computeMintBucket,
  computeWindowSlice,
  configFacts,
  corpusStatus,
  errorCodes,
  exportCorpus,
  exportRunSlices,
  floorToInterval,
  intervalToSeconds,
  parseWindowSpec,
  probeClickhouse,
  verifyLakeDir,
} = binding;

/** This machine in napi-rs's platform naming: `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, `win32-x64-msvc`. */
function hostPlatform() {
  const { platform, arch } = process;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  if (platform !== 'linux') return `${platform}-${arch}`;
  const glibc = process.report?.getReport?.().header?.glibcVersionRuntime;
  return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
}

/** Every failure the loader collected, flattened (it chains them through `cause`). */
function failures(err) {
  const out = [];
  for (let e = err; e instanceof Error && out.length < 50; e = e.cause) out.push(e);
  return out;
}

function addonNotFound(cause) {
  const pkg = createRequire(import.meta.url)('./package.json');
  const platform = hostPlatform();
  const shipped = Object.keys(pkg.optionalDependencies ?? {})
    .filter((name) => name.startsWith(`${pkg.name}-`))
    .map((name) => name.slice(pkg.name.length + 1));
  // A binary that exists but does not load (an older C library, another architecture) says why in its dlopen error.
  const broken = failures(cause)
    .slice(1)
    .map((e) => e.message)
    .find((m) => !/Cannot find (module|package)/.test(m));
  const fromSource =
    'build it from source: install Rust 1.89+ (https://rustup.rs), clone the repository, run `npm ci && npm run build:native`, ' +
    `and set NAPI_RS_NATIVE_LIBRARY_PATH to the built quantbot-lake.${platform}.node (README, "Build from source")`;
  let message;
  if (broken) {
    message = `${pkg.name}: the native addon for ${platform} is installed but did not load: ${broken.split('\n')[0]}`;
  } else if (shipped.includes(platform)) {
    message =
      `${pkg.name}: the binary package for this machine, ${pkg.name}-${platform}, is not installed. npm leaves optional ` +
      'dependencies out with --omit=optional (or --no-optional), and can lose them from a lockfile made on another ' +
      'platform: remove node_modules and package-lock.json and run npm install again.';
  } else if (shipped.length) {
    message = `${pkg.name} has no prebuilt binary for ${platform} (Node ${process.version}); there are binaries for ${shipped.join(', ')}. On this machine, ${fromSource}.`;
  } else {
    message = `${pkg.name}: the native addon is not built for ${platform}: run \`npm run build:native\` (needs Rust 1.89+), or ${fromSource}.`;
  }
  return Object.assign(new Error(message, { cause }), { code: 'ADDON_NOT_FOUND', platform });
}
