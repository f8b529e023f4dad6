// Runs a TypeScript bench straight from source on Node 24 (built-in type stripping): the sources import
// each other as `./x.js`, which this hook maps to `./x.ts` when only the .ts file exists.
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.startsWith('file:')) {
      const candidate = new URL(specifier, context.parentURL);
      if (!existsSync(fileURLToPath(candidate))) {
        const typescript = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
        if (existsSync(fileURLToPath(typescript))) return nextResolve(typescript.href, context);
      }
    }
    return nextResolve(specifier, context);
  },
});

const [script, ...rest] = process.argv.slice(2);
if (!script) {
  process.stderr.write('usage: node bench/engine/run.mjs <script.ts> [args]\n');
  process.exit(2);
}
process.argv = [process.argv[0], script, ...rest];
await import(pathToFileURL(script).href);
