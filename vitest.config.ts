import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real PostgreSQL, PGlite, git and agent processes: generous bounds, never timing assertions.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    globalSetup: ['test/helpers/global-setup.ts'],
    // Fails a test file that leaves a child process (or an agent's process group) behind.
    setupFiles: ['test/helpers/chaos-leak-guard.ts'],
    reporters: ['default'],
  },
});
