/** Types of scripts/platforms.mjs for the TypeScript tests. */

/** How a platform's binary is built: cargo-zigbuild's target on Linux x86_64, or plain cargo on its own OS. */
export interface PlatformBuild {
  zigTarget?: string;
  rustflags?: string;
  macos?: string;
  frameworks?: string[];
  glibc?: number[];
}

/** One platform package under npm/<platform>/. */
export interface Platform {
  platform: string;
  triple: string;
  name: string;
  main: string;
  os: string[];
  cpu: string[];
  libc?: string[];
  build: PlatformBuild;
  elsewhere?: string;
}

/** Every platform of package.json's napi.targets. */
export function platforms(root?: string): Platform[];
/** This machine in napi-rs's platform naming. */
export function hostPlatform(): string;
/** npm's tarball file name of a package at a version. */
export function tarballName(name: string, version: string): string;
