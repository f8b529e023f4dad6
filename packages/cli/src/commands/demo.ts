/**
 * `cxr demo`: the whole job on a synthetic chest-phantom data set, every stage the real command: real DICOM
 * files in the seed export's layout → import → patient split → stats → train a small Faster R-CNN briefly →
 * evaluate → export to ONNX → predict (COCO, CSV, overlays, DICOM SR) → explain (EigenCAM, AblationCAM) →
 * a federated simulation — ending with an index page that links every picture and report.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { FedcxrError, writeFileAtomic, writeJsonAtomic } from '@fedcxr/core';
import { generateChestPhantom } from '@fedcxr/dicom';
import { COMPACT_HEADS } from '@fedcxr/models-frcnn';
import type { Command } from 'commander';
import { type DemoStage, demoIndexHtml } from '../demo/index-page.js';
import { action, formatDuration, withCommonOptions } from '../framework.js';
import { invokeCommand } from '../invoke.js';

interface DemoFlags {
  out: string;
  seed: string;
  epochs: string;
  patients: string;
  backend: string;
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
      .option('--patients <n>', 'labelled patients in the phantom', '16')
      .option('--epochs <n>', 'training epochs', '10')
      .option('--backend <name>', 'tensor engine backend for training', 'auto'),
  ).action(
    action(async (ctx, flags: DemoFlags) => {
      const out = resolve(flags.out);
      const seed = Number(flags.seed);
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
          generateChestPhantom({ out: exportDir, seed, size: 256, patients: Number(flags.patients), testImages: 4 }),
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
          '128',
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

      const config = {
        name: 'train',
        runsDir: out,
        seed,
        epochs: Number(flags.epochs),
        batchSize: 4,
        model: {
          detector: 'faster_rcnn',
          backbone: 'resnet18_fpn',
          minSize: 128,
          maxSize: 128,
          trainableLayers: 5,
          // A small CPU run: fewer proposals and sampled RoIs, a narrower box head.
          options: COMPACT_HEADS,
        },
        data: { train: trainFile, val: valFile, normalization: 'seed' },
        // Clipping keeps a from-scratch detector stable on a handful of images (fed simulate does the same).
        optimizer: { lr: 0.01, clipGradNorm: 10 },
        schedule: { warmupSteps: 20, type: 'constant' },
        engine: { backend: flags.backend },
      };
      const configFile = join(out, 'train.json');
      await writeJsonAtomic(configFile, config);
      await stage(`train Faster R-CNN (ResNet-18-FPN, 128 px) for ${config.epochs} epochs`, () =>
        run(['train', '--config', configFile]),
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
      const firstTest = join(testImages, (await readdir(testImages)).sort()[0]);
      const explainDir = join(out, 'explain');
      await stage('explain the best detection: EigenCAM', () =>
        run([
          'explain',
          firstTest,
          '--model',
          onnx,
          '--method',
          'eigencam',
          '--detection',
          '0',
          '--out',
          join(explainDir, 'eigencam.png'),
        ]),
      );
      await stage('explain the best detection: AblationCAM (5 % of channels)', () =>
        run([
          'explain',
          firstTest,
          '--model',
          onnx,
          '--method',
          'ablationcam',
          '--detection',
          '0',
          '--ratio',
          '0.05',
          '--out',
          join(explainDir, 'ablationcam.png'),
        ]),
      );
      const federated = await stage(
        'federated Faster R-CNN: coordinator + 2 site processes on loopback, against centralized training',
        () =>
          run<Record<string, unknown>>([
            'fed',
            'simulate',
            '--model',
            'faster_rcnn',
            '--sites',
            '2',
            '--data',
            annotations,
            '--rounds',
            '2',
            '--size',
            '128',
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

      const total = (performance.now() - started) / 1000;
      const index = join(out, 'index.html');
      await writeFileAtomic(
        index,
        await demoIndexHtml({
          out,
          stages,
          total,
          metrics,
          phantom: { patients: phantom.patients, images: phantom.train.length },
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
          predictions: predictions.predictions.length,
        },
        human: `demo finished in ${formatDuration(total)}: open ${relative(process.cwd(), index) || index}`,
      };
    }),
  );
}
