import { defineConfig } from 'tsup';

export default defineConfig({
  // `@fedcxr/models-frcnn/testing`: test helpers that production code never imports (tests/production-imports.test.ts).
  entry: ['src/index.ts', 'src/testing.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node24',
});
