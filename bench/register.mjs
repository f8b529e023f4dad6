// Runs a bench straight from source on Node 24: sibling packages (`@fedcxr/base`, `@fedcxr/core`, ...) resolve to
// their src/index.ts as in vitest (not to a possibly stale dist), and `./x.js` imports map to `./x.ts`.
// Sources use parameter properties, so the bench runs with --experimental-transform-types.
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const packages = {
  '@fedcxr/base': 'packages/base/src/index.ts',
  '@fedcxr/core': 'packages/core/src/index.ts',
  '@fedcxr/core/data': 'packages/core/src/data/index.ts',
  '@fedcxr/core/eval': 'packages/core/src/eval/index.ts',
  '@fedcxr/core/testing': 'packages/core/src/testing/index.ts',
  '@fedcxr/core/train': 'packages/core/src/train/index.ts',
  '@fedcxr/dicom': 'packages/dicom/src/index.ts',
  '@fedcxr/models-frcnn': 'packages/models-frcnn/src/index.ts',
  '@fedcxr/models-frcnn/testing': 'packages/models-frcnn/src/testing.ts',
  '@fedcxr/federated': 'packages/federated/src/index.ts',
  '@fedcxr/coordinator': 'apps/coordinator/src/index.ts',
};

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier in packages) return nextResolve(new URL(packages[specifier], root).href, context);
    if (specifier.endsWith('.js') && (specifier.startsWith('.') || specifier.startsWith('/')) && context.parentURL) {
      const url = new URL(specifier, context.parentURL);
      if (!existsSync(fileURLToPath(url))) {
        const ts = new URL(url.href.replace(/\.js$/, '.ts'));
        if (existsSync(fileURLToPath(ts))) return nextResolve(ts.href, context);
      }
    }
    return nextResolve(specifier, context);
  },
});
