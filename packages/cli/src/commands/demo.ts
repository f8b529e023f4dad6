/**
 * `cxr demo`: the whole job on a synthetic chest-phantom data set, every stage the real command: real DICOM
 * files in the seed export's layout → import → patient split → stats → train a small Faster R-CNN briefly →
 * evaluate → export to ONNX → predict (COCO, CSV, overlays, DICOM SR) → explain (occlusion, EigenCAM, AblationCAM) →
 * a federated simulation — ending with an index page that links every picture and report.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { FedcxrError, writeFileAtomic, writeJsonAtomic } from '@fedcxr/core';
import { generateChestPhantom, PHANTOM_CLASSES } from '@fedcxr/dicom';
import { COMPACT_HEADS } from '@fedcxr/models-frcnn';
import type { Command } from 'commander';
import { type DemoExplanation, type DemoStage, demoIndexHtml } from '../demo/index-page.js';
import { action, formatDuration, withCommonOptions } from '../framework.js';
import { invokeCommand } from '../invoke.js';

interface DemoFlags {
  out: string;
  seed: string;
  epochs: string;
  patients: string;
  size: string;
  rounds: string;
  backend: string;
}

/**
 * The demo's classes: three of the seed's findings that differ in place and look at the demo's resolution
 * (a heart far too wide, low in the middle; a dense round opacity inside a lung; a spine bent sideways),
 * plus normal images. The phantom draws them conspicuously; the other four findings are left out, and the
 * index page says so.
 */
export const DEMO_CLASSES = ['cardiac_hypertrophy', 'lung_field_infiltration', 'scoliosis', 'normal'] as const;

/** The heat maps the demo draws of its most confident test detection, in the page's order. */
const DEMO_EXPLANATIONS = [
  { method: 'occlusion', withinBox: false, title: 'occlusion (score drop under a sliding patch)' },
  { method: 'eigencam', withinBox: false, title: 'EigenCAM' },
  { method: 'eigencam', withinBox: true, title: 'EigenCAM, inside its box' },
  { method: 'ablationcam', withinBox: false, title: 'AblationCAM (5 % of channels)' },
  { method: 'ablationcam', withinBox: true, title: 'AblationCAM (5 % of channels), inside its box' },
] as const;

/** The phantom's DICOMs are this many times the detector's input size. */
const EXPORT_SCALE = 4;

/**
 * The demo's training config, what `cxr train --config` (and `cxr fed simulate --config`) reads: ResNet-18-FPN
 * from random weights at `size` px with COMPACT_HEADS and anchors scaled to the image (torchvision's 32…512 px
 * anchors are for 800 px images: at 128 px a 16 px opacity matches none), a constant lr of 0.02 after a
 * one-epoch warm-up, gradients clipped (from random weights), no augmentation (the phantoms vary already).
 */
export function demoTrainConfig(options: {
  out: string;
  seed: number;
  epochs: number;
  size: number;
  train: string;
  val: string;
  backend: string;
}) {
  const anchor = options.size / 8;
  return {
    name: 'train',
    runsDir: options.out,
    seed: options.seed,
    epochs: options.epochs,
    batchSize: 4,
    model: {
      detector: 'faster_rcnn',
      backbone: 'resnet18_fpn',
      minSize: options.size,
      maxSize: options.size,
      trainableLayers: 5,
      // A small CPU run: fewer proposals and sampled RoIs, a narrower box head; anchors for small images.
      options: {
        ...COMPACT_HEADS,
        rpn: { ...COMPACT_HEADS.rpn, anchorSizes: [1, 2, 4, 8, 16].map((k) => [anchor * k]) },
      },
    },
    data: { train: options.train, val: options.val, normalization: 'seed' },
    optimizer: { lr: 0.02, clipGradNorm: 10 },
    schedule: { warmupEpochs: 1, type: 'constant' },
    augmentation: null,
    validation: { reportImages: 6 },
    engine: { backend: options.backend },
  };
}

export function registerDemoCommands(program: Command): void {
  withCommonOptions(
    program
      .command('demo')
      .description(
        'run the whole pipeline on a generated chest-phantom data set (DICOM) into runs/demo/, ending with its HTML report',
      )
      .option('--out <dir>', 'output folder (replaced)', 'runs/demo')
      .option('--seed <n>', 'seed for the phantom, the split and training', '1')
      .option('--patients <n>', 'labelled patients in the phantom (1–3 images each)', '32')
      .option('--epochs <n>', 'training epochs', '12')
      .option('--size <px>', 'detector input size (the export is imported at this size)', '64')
      .option('--rounds <n>', 'federated rounds (one local epoch each), starting from the trained detector', '3')
      .option('--backend <name>', 'tensor engine backend for training', 'auto'),
  ).action(
    action(async (ctx, flags: DemoFlags) => {
      const out = resolve(flags.out);
      const seed = Number(flags.seed);
      const size = Number(flags.size);
      if (!Number.isInteger(size) || size < 64 || size % 32 !== 0)
        throw new FedcxrError('usage', `--size must be a multiple of 32, at least 64; got "${flags.size}"`);
      await rm(out, { recursive: true, force: true });
      await mkdir(out, { recursive: true });
      const stages: DemoStage[] = [];
      const started = performance.now();

      /** Runs one stage; a real command's failure stops the demo with that command's message. */
      const stage = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
        ctx.log(`\n▶ ${name}`);
        const t0 = performance.now();
        const result = await body();
        const seconds = (performance.now() - t0) / 1000;
        stages.push({ name, seconds });
        ctx.log(`  ✓ ${name} (${formatDuration(seconds)})`);
        return result;
      };
      const run = async <T>(args: string[]): Promise<T> => {
        ctx.log(`  $ cxr ${args.map((a) => (a.startsWith(out) ? relative(process.cwd(), a) || '.' : a)).join(' ')}`);
        const result = await invokeCommand([...args, '--json'], { passStderr: !ctx.quiet && !ctx.json });
        if (result.exitCode !== 0) {
          const error = (() => {
            try {
              return result.json<{ error?: { message?: string } }>().error?.message;
            } catch {
              return undefined;
            }
          })();
          throw new FedcxrError(
            'demo_stage_failed',
            `cxr ${args[0]} ${args[1] ?? ''} failed: ${error ?? result.stderr.trim()}`,
          );
        }
        return result.json<T>();
      };

      const exportDir = join(out, 'export');
      const phantom = await stage(
        'generate a synthetic hospital export (DICOM, MONOCHROME1 12-bit, masks, train.csv)',
        () =>
          generateChestPhantom({
            out: exportDir,
            seed,
            // Four times the detector's size: import shrinks it; predict (on these DICOMs) resizes by the same
            // factor, and the overlays and heat maps are drawn on the DICOMs, big enough to look at.
            size: EXPORT_SCALE * size,
            patients: Number(flags.patients),
            testImages: 4,
            classes: DEMO_CLASSES,
            findings: 'conspicuous',
          }),
      );
      const dataset = join(out, 'dataset');
      await stage('import: normalize (seed preset), masks → boxes, COCO', () =>
        run([
          'dataset',
          'import',
          '--format',
          'seed',
          exportDir,
          '--out',
          dataset,
          '--preset',
          'seed',
          '--size',
          String(size),
        ]),
      );
      const annotations = join(dataset, 'annotations.json');
      const split = await stage('split by patient (no patient in two splits)', () =>
        run<{ files: string[] }>(['dataset', 'split', annotations, '--val', '0.25', '--seed', String(seed)]),
      );
      const [trainFile, valFile] = split.files;
      await stage('dataset statistics page', () =>
        run(['dataset', 'stats', annotations, '--html', join(out, 'dataset-stats.html')]),
      );

      const config = demoTrainConfig({
        out,
        seed,
        epochs: Number(flags.epochs),
        size,
        train: trainFile,
        val: valFile,
        backend: flags.backend,
      });
      const configFile = join(out, 'train.json');
      await writeJsonAtomic(configFile, config);
      await stage(
        `train Faster R-CNN (ResNet-18-FPN from random weights, ${size} px) for ${config.epochs} epochs`,
        () => run(['train', '--config', configFile]),
      );
      const model = join(out, 'train', 'best');
      const metrics = await stage('evaluate the best checkpoint on the validation split (COCO, FROC)', () =>
        run<{ stats: number[]; froc: { score: number } | null }>([
          'eval',
          '--model',
          model,
          '--data',
          valFile,
          '--froc',
        ]),
      );
      const onnx = join(out, 'model', 'detector.onnx');
      await stage('export to ONNX', () => run(['export', 'onnx', '--model', model, '--out', onnx]));
      const testImages = join(exportDir, 'test', 'image');
      const predictions = await stage(
        'predict the unlabelled test DICOMs (ONNX Runtime): COCO, CSV, overlays, DICOM SR',
        () =>
          run<{ predictions: unknown[] }>([
            'predict',
            testImages,
            '--model',
            onnx,
            '--out',
            join(out, 'predict'),
            '--score-thr',
            '0.3',
          ]),
      );
      // Explain the most confident detection of the test images (its image's detection 0).
      const firstTest = await mostConfidentImage(join(out, 'predict')).then(
        async (file) => file ?? join(testImages, (await readdir(testImages)).sort()[0]),
      );
      const explainDir = join(out, 'explain');
      // Occlusion (what the box's score depends on), then the two CAMs over the whole image and inside the explained
      // box (pytorch-grad-cam's renormalization); each one says whether its hottest point lies in the box.
      const explanations: DemoExplanation[] = [];
      for (const map of DEMO_EXPLANATIONS) {
        const file = `${map.method}${map.withinBox ? '-in-box' : ''}.png`;
        const result = await stage(`explain the best detection: ${map.title}`, () =>
          run<{ peak_in_box: boolean }>([
            'explain',
            firstTest,
            '--model',
            onnx,
            '--method',
            map.method,
            '--detection',
            '0',
            ...(map.method === 'ablationcam' ? ['--ratio', '0.05'] : []),
            ...(map.withinBox ? ['--within-boxes'] : []),
            '--out',
            join(explainDir, file),
          ]),
        );
        explanations.push({ file, title: map.title, peakInBox: result.peak_in_box, withinBox: map.withinBox });
      }
      // Two hospitals with patients of their own: a second cohort (another seed) the detector never saw, so the
      // federated stage's test patients are new to the starting model too.
      const hospitals = join(out, 'hospitals');
      await stage("generate two hospitals' own patients (a second phantom cohort) and import them", async () => {
        await generateChestPhantom({
          out: join(hospitals, 'export'),
          seed: seed + 1,
          size: EXPORT_SCALE * size,
          patients: Number(flags.patients),
          testImages: 0,
          classes: DEMO_CLASSES,
          findings: 'conspicuous',
        });
        return run([
          'dataset',
          'import',
          '--format',
          'seed',
          join(hospitals, 'export'),
          '--out',
          join(hospitals, 'dataset'),
          '--preset',
          'seed',
          '--size',
          String(size),
        ]);
      });
      const federated = await stage(
        `federated Faster R-CNN: coordinator + 2 hospital site processes on loopback, ${flags.rounds} rounds from the trained detector, against centralized training`,
        () =>
          run<Record<string, unknown>>([
            'fed',
            'simulate',
            '--model',
            'faster_rcnn',
            '--sites',
            '2',
            '--data',
            join(hospitals, 'dataset', 'annotations.json'),
            // Both the federation and the centralized baseline start from the detector trained above.
            '--init',
            model,
            '--rounds',
            flags.rounds,
            '--epochs',
            '1',
            // The same model and recipe as the centralized run above.
            '--config',
            configFile,
            '--backend',
            flags.backend,
            '--seed',
            String(seed),
            '--work-dir',
            join(out, 'federated'),
            '--report',
            join(out, 'federated.html'),
          ]),
      );

      await writeJsonAtomic(join(out, 'federated.json'), federated);
      const total = (performance.now() - started) / 1000;
      const index = join(out, 'index.html');
      await writeFileAtomic(
        index,
        await demoIndexHtml({
          out,
          stages,
          total,
          metrics,
          phantom: {
            patients: phantom.patients,
            images: phantom.train.length,
            classes: [...DEMO_CLASSES],
            omitted: PHANTOM_CLASSES.filter((c) => !(DEMO_CLASSES as readonly string[]).includes(c)),
          },
          epochs: await epochsOf(join(out, 'train', 'log.jsonl')),
          explanations,
          federated,
        }),
      );
      return {
        data: {
          out,
          index,
          seconds: total,
          stages,
          metrics: { stats: metrics.stats },
          federated: {
            initial: (federated.initial as { ap?: number } | undefined)?.ap,
            federated: (federated.federated as { ap?: number } | undefined)?.ap,
            centralized: (federated.centralized as { ap?: number } | undefined)?.ap,
            mapRatio: federated.mapRatio ?? null,
          },
          explanations,
          predictions: predictions.predictions.length,
          detections: await readJson<unknown[]>(join(out, 'predict', 'results.json')).then((r) => r?.length ?? 0),
        },
        human: `demo finished in ${formatDuration(total)}: open ${relative(process.cwd(), index) || index}`,
      };
    }),
  );
}

/** Validation AP and AP50 per epoch from a run's log.jsonl. */
async function epochsOf(file: string): Promise<{ epoch: number; ap: number; ap50: number; loss: number }[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as { epoch: number; train: { loss: number }; val?: { AP?: number; AP50?: number } })
    .map((e) => ({ epoch: e.epoch, ap: e.val?.AP ?? 0, ap50: e.val?.AP50 ?? 0, loss: e.train.loss }));
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The image (file) whose top detection scores highest in a `cxr predict --out` folder; undefined if none. */
async function mostConfidentImage(dir: string): Promise<string | undefined> {
  const results = await readJson<{ image_id: number; score: number }[]>(join(dir, 'results.json'));
  const images = await readJson<{ id: number; file_name: string }[]>(join(dir, 'images.json'));
  if (!results?.length || !images) return undefined;
  const best = results.reduce((a, b) => (b.score > a.score ? b : a));
  return images.find((image) => image.id === best.image_id)?.file_name;
}
