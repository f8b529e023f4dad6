import { defineConfig } from 'tsup';

export default defineConfig({
  // Subpath entries (`@fedcxr/core/eval`, `/data`, `/train`) are the folders' index.ts; they share chunks with the
  // main entry, so a class or registry is one object whichever path imported it. `/testing` holds test helpers
  // that production code never imports (tests/production-imports.test.ts).
  entry: ['src/index.ts', 'src/eval/index.ts', 'src/data/index.ts', 'src/train/index.ts', 'src/testing/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node24',
});
