#!/usr/bin/env node
/** The `quantbot` executable. */

// Loaded dynamically so that a machine without the addon's binary gets one line naming the platform and what to
// do (the loader's ADDON_NOT_FOUND error), not a stack trace from the module graph.
import('./main.js').then(
  ({ main }) => main(process.argv.slice(2)).then((code) => process.exit(code)),
  (err: unknown) => {
    const { code, message } = err instanceof Error ? (err as Error & { code?: string }) : { code: undefined, message: String(err) };
    const json = process.argv.includes('--format') && process.argv[process.argv.indexOf('--format') + 1] === 'json';
    const text = json ? JSON.stringify({ error: { code: code ?? 'INTERNAL', message } }) : `quantbot lake: ${code ?? 'INTERNAL'}: ${message}`;
    process.stderr.write(`${text}\n`);
    process.exit(1);
  },
);
