/**
 * Does fedcxr learn as well as torchvision? One command trains torchvision's Faster R-CNN (reference venv)
 * and fedcxr's (`cxr train`) on the same patient-grouped split of ../shared/data/rsna-pneumonia, with the same
 * normalization, resolution, recipe and initial weights (torchvision's initial state, imported with
 * `cxr weights import`), then scores both best checkpoints on the held-out test split with both evaluators
 * (pycocotools and `cxr eval`), and writes results.json and report.html (loss and validation-mAP curves of
 * both sides, the final table and the ratios ours/torchvision).
 *
 *   npm run bench:quality -- --config cpu [--seeds 0,1] [--epochs N] [--backend auto|torch|wasm]
 *     [--out WORKDIR (default .cache/quality/runs/<config>)] [--publish DIR (default bench/quality/results/<config>)]
 *     [--keep-seeds (keep the published seeds this run does not train)]
 *     [--paired (the torchvision side draws fedcxr's random numbers: same image order, augmentations and sampled
 *      anchors/RoIs, so the sides differ by floating point only; default out/publish get a `-paired` suffix)]
 *
 * Configurations: `smoke` (a few images, 2 epochs: the pipeline itself), `cpu` (ResNet-18-FPN, compact heads,
 * 256 px: ≤ 45 min per side on 2 cores), `gpu` (ResNet-50-FPN, 512 px, every image, 18 epochs: one device
 * run), `seed` (configs/seed-recipe.yaml's recipe, the seed study's). Every step is skipped when its output
 * exists, so an interrupted run resumes where it stopped (`cxr train --resume` inside a run).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pairedBootstrap } from './bootstrap.js';
import { CONFIGURATIONS, oursConfig, type Recipe, type RecipeTemplate } from './recipes.js';
import { writeQualityReport } from './report.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dataRoot = path.resolve(repoRoot, '../shared/data/rsna-pneumonia');

interface Options {
  config: string;
  seeds: number[];
  epochs?: number;
  out: string;
  backend: string;
  python: string;
  /** Folder that already holds train/val/test.json (the GPU run carries one); default: import RSNA here. */
  data?: string;
  /** Engine for fedcxr's test predictions: onnx (ONNX Runtime) or tfjs (the training engine). */
  evalEngine: 'onnx' | 'tfjs';
  /** Stop fedcxr's training after this long and score the best epoch so far (a device call has a limit). */
  trainTimeoutS?: number;
  /** `cxr train --no-report`: the run's own report needs ONNX Runtime for its heat maps (absent in the bundle). */
  trainReport: boolean;
  /** Where results.json and report.html are copied (small files, committed). */
  publish: string;
  /**
   * `--keep-seeds`: seeds already in the published results.json (same configuration and epochs) that this run
   * does not train are kept, so a second seed can be run on its own (each seed is ~80 quiet minutes on 2 cores).
   */
  keepSeeds: boolean;
  /** `--bootstrap-only`: train nothing; recompute the published seeds' bootstrap from the predictions in `out`. */
  bootstrapOnly: boolean;
  /** `--paired`: both sides draw fedcxr's random numbers (Recipe.draws). */
  paired: boolean;
}

/** How `cxr` is started: from the sources (the benches' resolver), or `--cxr "<command>"` (a bundle). */
let cxrCommand: string[] = [
  process.execPath,
  '--experimental-transform-types',
  '--no-warnings',
  '--import',
  './bench/register.mjs',
  'packages/cli/src/cli.ts',
];

function parseArgs(argv: string[]): Options {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const config = value('--config') ?? 'cpu';
  if (!(config in CONFIGURATIONS)) {
    throw new Error(`--config must be one of ${Object.keys(CONFIGURATIONS).join(', ')}, got "${config}"`);
  }
  const evalEngine = value('--eval-engine') ?? 'onnx';
  if (evalEngine !== 'onnx' && evalEngine !== 'tfjs') throw new Error(`--eval-engine must be onnx or tfjs`);
  const command = value('--cxr');
  if (command) cxrCommand = command.split(' ').filter(Boolean);
  const venv = process.env.REFERENCE_VENV ?? '/tmp/fedcxr-reference-venv';
  const timeout = value('--train-timeout-s');
  const paired = argv.includes('--paired');
  const runName = paired ? `${config}-paired` : config;
  return {
    config,
    seeds: (value('--seeds') ?? '0,1').split(',').map(Number),
    epochs: value('--epochs') === undefined ? undefined : Number(value('--epochs')),
    // The work (checkpoints, initial weights: large) stays out of git; the report is copied to results/.
    out: path.resolve(value('--out') ?? path.join(repoRoot, '.cache/quality/runs', runName)),
    publish: path.resolve(value('--publish') ?? path.join(repoRoot, 'bench/quality/results', runName)),
    paired,
    backend: value('--backend') ?? 'auto',
    keepSeeds: argv.includes('--keep-seeds') || argv.includes('--bootstrap-only'),
    bootstrapOnly: argv.includes('--bootstrap-only'),
    python: value('--python') ?? path.join(venv, 'bin/python'),
    data: value('--data') === undefined ? undefined : path.resolve(value('--data') as string),
    evalEngine,
    trainTimeoutS: timeout === undefined ? undefined : Number(timeout),
    trainReport: !argv.includes('--no-train-report'),
  };
}

/**
 * Runs a command with its progress on our stderr (stdout too, unless `stdoutTo` names a file to keep it in);
 * a failure stops the bench with the command named. With `timeoutS`, a run that outlives it is stopped and
 * `false` returned (the caller scores what was saved).
 */
function sh(command: string, args: string[], what: string, stdoutTo?: string, timeoutS?: number): boolean {
  process.stderr.write(`\n▶ ${what}\n`);
  const run = spawnSync(command, args, {
    cwd: repoRoot,
    stdio: ['ignore', stdoutTo ? 'pipe' : 'inherit', 'inherit'],
    // The torchvision side scores with `cxr eval` where pycocotools is absent.
    env: {
      ...process.env,
      FEDCXR_CXR_COMMAND: JSON.stringify(
        cxrCommand.map((a) =>
          a.startsWith('./') || a.endsWith('.ts') || a.endsWith('.mjs') ? path.resolve(repoRoot, a) : a,
        ),
      ),
    },
    maxBuffer: 1 << 30,
    ...(timeoutS ? { timeout: timeoutS * 1000, killSignal: 'SIGTERM' as const } : {}),
  });
  if (timeoutS && run.error && (run.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') {
    process.stderr.write(`  stopped after ${timeoutS} s (--train-timeout-s)\n`);
    return false;
  }
  if (run.status !== 0) throw new Error(`${what} failed (exit ${run.status}): ${command} ${args.join(' ')}`);
  if (stdoutTo) writeFileSync(stdoutTo, run.stdout);
  return true;
}

function cxr(args: string[], what: string, stdoutTo?: string, timeoutS?: number): boolean {
  const [command, ...prefix] = cxrCommand;
  return sh(command, [...prefix, ...args], what, stdoutTo, timeoutS);
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** Imports RSNA at the configuration's size and splits it by patient (70/15/15), once per size. */
function prepareData(size: number, prepared?: string): { train: string; val: string; test: string } {
  const dir = prepared ?? path.join(repoRoot, '.cache/quality', `rsna-${size}`);
  const files = {
    train: path.join(dir, 'train.json'),
    val: path.join(dir, 'val.json'),
    test: path.join(dir, 'test.json'),
  };
  if (Object.values(files).every(existsSync)) return files;
  if (prepared) throw new Error(`--data ${prepared}: expected train.json, val.json and test.json there`);
  if (!existsSync(dataRoot))
    throw new Error(`no RSNA data at ${dataRoot}: bench/quality needs ../shared/data/rsna-pneumonia`);
  cxr(
    ['dataset', 'import', '--format', 'rsna', dataRoot, '--out', dir, '--size', String(size), '--quiet'],
    `import RSNA at ${size} px`,
  );
  cxr(
    [
      'dataset',
      'split',
      path.join(dir, 'annotations.json'),
      '--val',
      '0.15',
      '--test',
      '0.15',
      '--seed',
      '0',
      '--quiet',
    ],
    'split by patient (70/15/15)',
  );
  return files;
}

/** The first N images of a COCO file (and their boxes), for smoke runs: torchvision has no `limit`. */
function limitCoco(file: string, limit: number, out: string): string {
  const coco = readJson<{ images: { id: number }[]; annotations: { image_id: number }[] }>(file);
  const images = coco.images.slice(0, limit);
  const ids = new Set(images.map((i) => i.id));
  const dir = path.dirname(file);
  // file_name stays relative to the original folder: write beside it.
  const target = path.join(dir, out);
  writeFileSync(
    target,
    JSON.stringify({ ...coco, images, annotations: coco.annotations.filter((a) => ids.has(a.image_id)) }),
  );
  return target;
}

export interface SideResult {
  history: { epoch: number; train: Record<string, number>; val?: Record<string, number>; seconds: number }[];
  bestEpoch: number;
  /** Scored by pycocotools and by `cxr eval` (COCO stats by name, FROC score). */
  test: { pycocotools: Record<string, number>; fedcxr: Record<string, number> };
  seconds: number;
}

export interface SeedResult {
  seed: number;
  backend: string;
  torchvision: SideResult;
  ours: SideResult;
}

const STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'];

function cxrEval(gt: string, dt: string, out: string): Record<string, number> {
  if (!existsSync(out)) {
    cxr(['eval', '--gt', gt, '--dt', dt, '--froc', '--json', '--quiet'], `cxr eval ${path.basename(dt)}`, out);
  }
  const result = readJson<{ stats: number[]; froc: { score: number } | null }>(out);
  return {
    ...Object.fromEntries(STAT_NAMES.map((n, i) => [n, Math.max(0, result.stats[i])])),
    FROC: result.froc?.score ?? 0,
  };
}

function runSeed(options: Options, template: RecipeTemplate, seed: number): SeedResult {
  const dir = path.join(options.out, `seed-${seed}`);
  mkdirSync(dir, { recursive: true });
  let data = prepareData(template.imageSize, options.data);
  if (template.limit) {
    data = {
      train: limitCoco(data.train, template.limit, `train-first${template.limit}.json`),
      val: limitCoco(data.val, template.limit, `val-first${template.limit}.json`),
      test: limitCoco(data.test, template.limit, `test-first${template.limit}.json`),
    };
  }
  const { imageSize: _size, ...rest } = template;
  const recipe: Recipe = {
    ...rest,
    seed,
    epochs: options.epochs ?? template.epochs,
    data: { size: template.imageSize, ...data },
  };
  const recipeFile = path.join(dir, 'recipe.json');
  writeFileSync(recipeFile, `${JSON.stringify(recipe, null, 1)}\n`);

  // The same starting point: torchvision's initial state, saved once and imported into fedcxr.
  const init = path.join(dir, 'init.pth');
  const initModel = path.join(dir, 'init-model');
  if (!existsSync(init))
    sh(
      options.python,
      ['bench/quality/torchvision_side.py', 'init', '--recipe', recipeFile, '--out', init],
      'torchvision initial weights',
    );
  if (!existsSync(path.join(initModel, 'model.json'))) {
    cxr(
      [
        'weights',
        'import',
        init,
        '--arch',
        recipe.model.backbone,
        // Foreground classes, as everywhere in fedcxr's configs (torchvision's num_classes adds the background).
        '--num-classes',
        String(recipe.model.numClasses),
        '--out',
        initModel,
        '--quiet',
      ],
      'cxr weights import (the same initial weights)',
    );
  }

  const tvDir = path.join(dir, 'torchvision');
  let started = performance.now();
  if (!existsSync(path.join(tvDir, 'summary.json'))) {
    sh(
      options.python,
      ['bench/quality/torchvision_side.py', 'train', '--recipe', recipeFile, '--init', init, '--out', tvDir],
      'train torchvision',
    );
  }
  const tvSeconds = (performance.now() - started) / 1000;
  const tvHistory = readJson<SideResult['history']>(path.join(tvDir, 'history.json'));

  const runsDir = path.join(dir, 'runs');
  const configFile = path.join(dir, 'ours.json');
  writeFileSync(configFile, `${JSON.stringify(oursConfig(recipe, runsDir, initModel, options.backend), null, 1)}\n`);
  const runDir = path.join(runsDir, 'ours');
  started = performance.now();
  const logFile = path.join(runDir, 'log.jsonl');
  const readLog = () =>
    existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as SideResult['history'][number] & { best?: boolean })
      : [];
  if (readLog().length < recipe.epochs) {
    cxr(
      [
        'train',
        '--config',
        configFile,
        ...(existsSync(runDir) ? ['--resume'] : []),
        ...(options.trainReport ? [] : ['--no-report']),
        '--quiet',
      ],
      `train fedcxr (${options.backend})`,
      undefined,
      options.trainTimeoutS,
    );
  }
  const oursSeconds = (performance.now() - started) / 1000;
  const oursHistory = readLog();

  const oursResults = path.join(dir, 'ours-test-results.json');
  if (!existsSync(oursResults)) {
    cxr(
      [
        'eval',
        '--model',
        path.join(runDir, 'best'),
        '--data',
        data.test,
        '--save-results',
        oursResults,
        '--engine',
        options.evalEngine,
        '--quiet',
        '--json',
      ],
      'predict the test split with fedcxr',
      path.join(dir, 'ours-predict-eval.json'),
    );
  }
  const pycoco = (results: string, out: string): Record<string, number> => {
    if (!existsSync(out))
      sh(
        options.python,
        ['bench/quality/torchvision_side.py', 'score', '--recipe', recipeFile, '--results', results, '--out', out],
        `pycocotools ${path.basename(results)}`,
      );
    return readJson<Record<string, number>>(out);
  };
  const tvResults = path.join(tvDir, 'test-results.json');
  const bestOf = (history: { best?: boolean; epoch: number }[]) => history.filter((h) => h.best).at(-1)?.epoch ?? 0;
  const side = (history: SideResult['history'], results: string, name: string, seconds: number): SideResult => ({
    history,
    bestEpoch: bestOf(history),
    test: {
      pycocotools: pycoco(results, path.join(dir, `${name}-pycocotools.json`)),
      fedcxr: cxrEval(data.test, results, path.join(dir, `${name}-cxr-eval.json`)),
    },
    seconds,
  });
  return {
    seed,
    backend: options.backend,
    torchvision: side(tvHistory, tvResults, 'torchvision', tvSeconds),
    ours: side(oursHistory, oursResults, 'ours', oursSeconds),
  };
}

/** The engine `cxr train` will use: `auto` resolved the way the CLI resolves it (cxr doctor's `auto`). */
function resolveBackend(asked: string, out: string): string {
  if (asked !== 'auto') return asked;
  const file = path.join(out, 'doctor.json');
  cxr(['doctor', '--json'], 'which engine auto picks (cxr doctor)', file);
  return readJson<{ auto: { backend: string } }>(file).auto.backend;
}

/** The published seeds `--keep-seeds` keeps: same configuration and epochs, not trained in this run. */
function keptSeeds(options: Options, template: RecipeTemplate): SeedResult[] {
  const file = path.join(options.publish, 'results.json');
  if (!options.keepSeeds || !existsSync(file)) return [];
  const published = readJson<{
    summary: { config: string };
    recipe: { epochs: number; draws?: string };
    seeds: SeedResult[];
  }>(file);
  const epochs = options.epochs ?? template.epochs;
  const draws = (r: { draws?: string }) => r.draws ?? 'own';
  if (
    published.summary.config !== options.config ||
    published.recipe.epochs !== epochs ||
    draws(published.recipe) !== draws(template)
  )
    throw new Error(
      `--keep-seeds: ${file} is configuration ${published.summary.config} with ${published.recipe.epochs} epochs and ${draws(published.recipe)} draws, this run ${options.config} with ${epochs} and ${draws(template)}`,
    );
  return published.seeds.filter((s) => !options.seeds.includes(s.seed));
}

/** The paired bootstrap over the seeds whose saved test predictions (both sides) are in `out`. */
function bootstrapOf(options: Options, test: string, seeds: SeedResult[]) {
  const files = seeds.map((s) => ({
    seed: s.seed,
    torchvision: path.join(options.out, `seed-${s.seed}`, 'torchvision', 'test-results.json'),
    ours: path.join(options.out, `seed-${s.seed}`, 'ours-test-results.json'),
  }));
  const present = files.filter((f) => existsSync(f.torchvision) && existsSync(f.ours));
  const missing = files
    .filter((f) => !present.includes(f))
    .map((f) => `seed ${f.seed}: its predictions are not in ${path.dirname(f.ours)} (trained in another clone)`);
  if (!existsSync(test)) return { unavailable: `the test split ${test} is not here` };
  if (present.length === 0) return { unavailable: missing.join('; ') };
  process.stderr.write(`\n▶ paired bootstrap over the test images (seeds ${present.map((f) => f.seed).join(', ')})\n`);
  return pairedBootstrap(
    readJson(test),
    present.map((f) => ({ seed: f.seed, torchvision: readJson(f.torchvision), ours: readJson(f.ours) })),
    { missing },
  );
}

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  mkdirSync(options.out, { recursive: true });
  const template: RecipeTemplate = {
    ...CONFIGURATIONS[options.config],
    ...(options.paired ? { draws: 'fedcxr' as const } : {}),
  };
  if (options.bootstrapOnly) options.seeds = [];
  else options.backend = resolveBackend(options.backend, options.out);
  const seeds = [
    ...keptSeeds(options, template),
    ...options.seeds.map((seed) => runSeed(options, template, seed)),
  ].sort((a, b) => a.seed - b.seed);
  const test = path.join(
    options.data ?? path.join(repoRoot, '.cache/quality', `rsna-${template.imageSize}`),
    'test.json',
  );
  const summary = writeQualityReport(options.out, {
    config: options.config,
    recipe: template,
    epochs: options.epochs ?? template.epochs,
    seeds,
    bootstrap: bootstrapOf(options, test, seeds),
  });
  mkdirSync(options.publish, { recursive: true });
  for (const file of ['results.json', 'report.html'])
    copyFileSync(path.join(options.out, file), path.join(options.publish, file));
  process.stdout.write(`${JSON.stringify(summary, null, 1)}\n`);
}

main();
