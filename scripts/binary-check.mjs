// What can be checked of a built addon from the file alone, for platforms whose binaries cannot run here:
// format and architecture, the exported napi entry point, the oldest OS it declares, the shared libraries it
// needs (only the system's), and for glibc the newest symbol version. Read with LLVM's own tools (rustup's
// llvm-tools component), which know ELF and Mach-O alike and share no code with the build.
// `node scripts/binary-check.mjs <binary> <platform>` prints the facts as JSON and exits 1 on a problem.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { platforms } from './platforms.mjs';

/** `tool` from rustup's llvm-tools component (installed when missing), or from the PATH where there is no Rust
 * (the release workflow's Alpine test puts Alpine's LLVM there). */
export function llvmTool(tool) {
  let sysroot;
  try {
    sysroot = execFileSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).trim();
  } catch {
    return tool;
  }
  const host = /host: (\S+)/.exec(execFileSync('rustc', ['-vV'], { encoding: 'utf8' }))[1];
  const path = join(sysroot, 'lib', 'rustlib', host, 'bin', tool);
  if (!existsSync(path)) execFileSync('rustup', ['component', 'add', 'llvm-tools'], { stdio: 'inherit' });
  return path;
}

const run = (tool, args) => execFileSync(llvmTool(tool), args, { encoding: 'utf8', maxBuffer: 1 << 28 });

/** The expected machine per CPU, as llvm-readobj names it in ELF (`e_machine`) and in Mach-O (`cputype`). */
const MACHINE = { x64: { elf: 'EM_X86_64', macho: '0x1000007' }, arm64: { elf: 'EM_AARCH64', macho: '0x100000C' } };

/** Libraries a binary may need: the system's C runtime and nothing that a user would have to install. */
const SYSTEM_LIBS = {
  glibc: /^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libgcc_s\.so\.1|ld-linux-[\w-]+\.so\.\d)$/,
  // musl's loader maps every libc.so / libc.musl-* request onto itself.
  musl: /^(libc\.so|libc\.musl-[\w]+\.so\.1|ld-musl-[\w]+\.so\.1)$/,
  darwin: /^(\/usr\/lib\/lib(System\.B|iconv\.2|charset\.1|c\+\+\.1|resolv\.9)\.dylib|\/System\/Library\/Frameworks\/\w+\.framework\/.+)$/,
};

/**
 * Checks `binary` against `platform` (an entry of platforms()).
 * @returns {{ platform: string, format: string, machine: string, exportsNapi: boolean, libraries: string[],
 *   minOs?: string, newestGlibc?: string, problems: string[] }}
 */
export function checkBinary(binary, platform) {
  const problems = [];
  const headers = run('llvm-readobj', ['--file-headers', binary]);
  const format = /^Format: (.+)$/m.exec(headers)?.[1] ?? 'unknown';
  const isMacho = platform.os.includes('darwin');
  const machine = (isMacho ? /CpuType: .*\((0x[0-9A-Fa-f]+)\)/ : /Machine: (\w+)/).exec(headers)?.[1] ?? 'unknown';
  const cpu = platform.cpu[0];
  const wanted = MACHINE[cpu]?.[isMacho ? 'macho' : 'elf'];
  if (machine !== wanted) problems.push(`machine ${machine}, expected ${wanted} for ${cpu}`);
  if (isMacho ? !/Mach-O/.test(format) : !/^elf64/.test(format)) problems.push(`format ${format}`);
  if (isMacho && !/FileType: DynamicLibrary/.test(headers)) problems.push('not a Mach-O dynamic library');

  const symbols = run('llvm-nm', isMacho ? ['--extern-only', '--defined-only', binary] : ['-D', '--defined-only', binary]);
  const exportsNapi = new RegExp(`\\s${isMacho ? '_' : ''}napi_register_module_v1(@|$)`, 'm').test(symbols);
  if (!exportsNapi) problems.push('napi_register_module_v1 is not exported');

  let libraries;
  let minOs;
  if (isMacho) {
    // The list starts with the library's own install name (LC_ID_DYLIB), which it does not need.
    const id = run('llvm-objdump', ['--macho', '--dylib-id', binary]).split('\n')[1]?.trim();
    libraries = run('llvm-objdump', ['--macho', '--dylibs-used', binary])
      .split('\n').slice(1).map((l) => l.trim().replace(/ \(compatibility .*$/, '')).filter((l) => l && l !== id);
    if (id && !id.startsWith('@rpath/')) problems.push(`install name ${id} is a path of the build machine`);
    const load = run('llvm-objdump', ['--macho', '--private-headers', binary]);
    minOs = /cmd LC_BUILD_VERSION[\s\S]*?minos ([\d.]+)/.exec(load)?.[1] ?? /cmd LC_VERSION_MIN_MACOSX[\s\S]*?version ([\d.]+)/.exec(load)?.[1];
    const wantedMin = platform.build?.macos;
    if (!minOs) problems.push('declares no minimum macOS version');
    else if (wantedMin && versionKey(minOs) > versionKey(wantedMin)) problems.push(`needs macOS ${minOs}, expected ${wantedMin} at most`);
  } else {
    libraries = [...run('llvm-readobj', ['--needed-libs', binary]).matchAll(/^\s+(\S+\.so\S*)\s*$/gm)].map((m) => m[1]);
  }
  const kind = isMacho ? 'darwin' : platform.libc?.[0] ?? 'glibc';
  const foreign = libraries.filter((l) => !SYSTEM_LIBS[kind].test(l));
  if (foreign.length) problems.push(`needs libraries outside the system's: ${foreign.join(', ')}`);

  let newestGlibc;
  if (!isMacho) {
    const versions = [...new Set([...symbols.matchAll(/@+GLIBC_(\d+)\.(\d+)(?:\.\d+)?/g), ...run('llvm-nm', ['-D', '--undefined-only', binary]).matchAll(/@+GLIBC_(\d+)\.(\d+)(?:\.\d+)?/g)].map((m) => `${m[1]}.${m[2]}`))];
    if (kind === 'musl') {
      if (versions.length) problems.push(`a musl binary refers to glibc symbol versions (${versions.join(', ')})`);
    } else {
      newestGlibc = versions.sort((a, b) => versionKey(a) - versionKey(b)).at(-1);
      const limit = platform.build?.glibc?.join('.') ?? '2.17';
      if (!newestGlibc) problems.push('no versioned glibc symbol: not linked against glibc?');
      else if (versionKey(newestGlibc) > versionKey(limit)) problems.push(`needs GLIBC_${newestGlibc}, expected ${limit} at most`);
    }
  }
  return { platform: platform.platform, format, machine, exportsNapi, libraries, minOs, newestGlibc, problems };
}

/** A dotted version as one comparable number (`10.13` → 10013000). */
function versionKey(v) {
  const [a = 0, b = 0, c = 0] = v.split('.').map(Number);
  return a * 1e6 + b * 1e3 + c;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [binary, name] = process.argv.slice(2);
  const platform = platforms().find((p) => p.platform === name);
  if (!binary || !platform) {
    console.error('usage: node scripts/binary-check.mjs <binary> <platform, e.g. darwin-arm64>');
    process.exit(2);
  }
  const facts = checkBinary(binary, platform);
  console.log(JSON.stringify(facts, null, 2));
  process.exit(facts.problems.length ? 1 : 0);
}
