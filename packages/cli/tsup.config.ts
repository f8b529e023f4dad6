import { defineConfig } from 'tsup';

export default defineConfig({
  // import-worker runs in worker threads (dataset import on every core), so it is its own entry.
  entry: ['src/index.ts', 'src/cli.ts', 'src/dataset/import-worker.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node24',
});
