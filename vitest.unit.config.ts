import { defineConfig } from 'vitest/config';

/**
 * The unit layer: pure modules, no Docker engine and no daemon, so no global setup. `npm test` runs it first;
 * it must finish in seconds on a machine without an engine.
 */
export default defineConfig({
  test: {
    include: ['tests/**/*.unit.test.ts'],
    testTimeout: 10_000,
    reporters: process.env.VITEST_JSON_REPORT ? ['default', ['json', { outputFile: `${process.env.VITEST_JSON_REPORT}.unit` }]] : ['default'],
  },
});
