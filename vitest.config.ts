import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import sibling packages from source, so `npm test` needs no build first.
const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@fedcxr/core': src('./packages/core/src/index.ts'),
      '@fedcxr/dicom': src('./packages/dicom/src/index.ts'),
      '@fedcxr/models-frcnn': src('./packages/models-frcnn/src/index.ts'),
      '@fedcxr/federated': src('./packages/federated/src/index.ts'),
      '@fedcxr/coordinator': src('./apps/coordinator/src/index.ts'),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
