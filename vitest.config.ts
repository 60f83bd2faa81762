import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // *.serial.test.ts take the engine away from everyone: vitest.serial.config.ts runs them alone afterwards.
    // *.unit.test.ts need no engine: vitest.unit.config.ts runs them first, without the engine check.
    exclude: ['**/node_modules/**', 'tests/**/*.serial.test.ts', 'tests/**/*.unit.test.ts'],
    globalSetup: ['tests/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Each file starts its own daemons against the one engine; two at a time suits a 2-core machine.
    maxWorkers: 2,
    // .ci/run reads the JSON report to print a plain "N passed, N failed" closing line.
    reporters: process.env.VITEST_JSON_REPORT ? ['default', ['json', { outputFile: process.env.VITEST_JSON_REPORT }]] : ['default'],
  },
});
