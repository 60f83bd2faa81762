import { defineConfig } from 'vitest/config';

/**
 * Tests that take the engine away from everything else on the machine (R2 restarts dockerd): run alone,
 * after the main suite, by `npm test`.
 */
export default defineConfig({
  test: {
    include: ['tests/**/*.serial.test.ts'],
    exclude: ['**/node_modules/**', 'tests/**/*.unit.test.ts'],
    globalSetup: ['tests/support/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: process.env.VITEST_JSON_REPORT ? ['default', ['json', { outputFile: `${process.env.VITEST_JSON_REPORT}.serial` }]] : ['default'],
  },
});
