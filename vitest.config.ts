import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration and crash tests open real sockets and child processes; two cores here.
    pool: 'forks',
    maxWorkers: 2,
  },
});
