import { defineConfig } from 'tsup';

export default defineConfig({
  // The conversion worker is its own entry: convertBatch starts it from dist/ as a worker thread.
  entry: ['src/index.ts', 'src/convert-worker.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node24',
});
