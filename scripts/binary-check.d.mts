/** Types of scripts/binary-check.mjs for the TypeScript tests. */
import type { Platform } from './platforms.mjs';

/** What the file says of itself, and what is wrong with it for its platform. */
export interface BinaryFacts {
  platform: string;
  format: string;
  machine: string;
  exportsNapi: boolean;
  libraries: string[];
  minOs?: string;
  newestGlibc?: string;
  problems: string[];
}

/** Checks a built addon against its platform. */
export function checkBinary(binary: string, platform: Platform): BinaryFacts;
/** The path of an LLVM tool of rustup's llvm-tools component. */
export function llvmTool(tool: string): string;
