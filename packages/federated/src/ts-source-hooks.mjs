// Lets a child process run the workspace's TypeScript sources directly (tests, `cxr` from a clone without a
// build): `@fedcxr/<pkg>` resolves to packages/<pkg>/src/index.ts and `./x.js` to `./x.ts` when only the
// .ts exists. Node 24 strips/transforms the types itself (--experimental-transform-types).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
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

export async function resolve(specifier, context, nextResolve) {
  const mapped = packages[specifier];
  if (mapped) return { url: pathToFileURL(root + mapped).href, shortCircuit: true };
  if ((specifier.startsWith('./') || specifier.startsWith('../')) && specifier.endsWith('.js') && context.parentURL) {
    const candidate = new URL(specifier, context.parentURL);
    if (!existsSync(fileURLToPath(candidate))) {
      const ts = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
      if (existsSync(fileURLToPath(ts))) return { url: ts.href, shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}
