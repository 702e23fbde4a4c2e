import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    setupFiles: ['__test__/support/setup.ts'],
    // Integration tests talk to a real ClickHouse and write real files: give them room, and run files one at a
    // time so that they do not compete for the two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
