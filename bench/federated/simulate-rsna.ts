/**
 * `cxr fed simulate` on the real RSNA subset (../shared/data/rsna-pneumonia): imports it once with
 * `cxr dataset import --size 64` into a cache, then runs the simulation per split mode and prints the
 * federated accuracy beside the centralized reference (same model, same total epochs, same test split).
 *
 *   node --experimental-transform-types --no-warnings \
 *     --import ./bench/register.mjs bench/federated/simulate-rsna.ts [--rounds 10]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simulate } from '../../apps/coordinator/src/simulate.js';
import { runCli } from '../../packages/cli/src/testing.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const rsna = join(root, '../shared/data/rsna-pneumonia');
const cache = join(root, 'node_modules/.cache/fedcxr-bench/rsna-64');
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};

if (!existsSync(rsna)) {
  console.log(`skipped: ${rsna} is absent`);
  process.exit(0);
}
const coco = join(cache, 'annotations.json');
if (!existsSync(coco)) {
  const run = await runCli(['dataset', 'import', '--format', 'rsna', rsna, '--out', cache, '--size', '64', '--json']);
  if (run.exitCode !== 0) throw new Error(run.stderr);
}
const rounds = Number(arg('rounds', '10'));
const sites = Number(arg('sites', '3'));
for (const split of ['patient', 'non-iid'] as const) {
  const report = await simulate({
    sites,
    data: coco,
    split,
    rounds,
    epochs: 1,
    learningRate: 0.5,
    batchSize: 16,
    seed: 1,
  });
  console.log(
    `RSNA ${split.padEnd(8)} ${sites} sites × ${rounds} rounds: federated acc ${report.federated.accuracy.toFixed(4)} ` +
      `loss ${report.federated.loss.toFixed(4)} | centralized acc ${report.centralized.accuracy.toFixed(4)} ` +
      `loss ${report.centralized.loss.toFixed(4)} | ratio ${report.accuracyRatio.toFixed(4)} | test ${report.testRows} rows | ${report.seconds.toFixed(1)} s`,
  );
}
