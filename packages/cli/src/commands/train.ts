/**
 * `cxr train --config <file> [--resume]`: trains a detector with the seed's recipe (the config's defaults),
 * validating every epoch, keeping best/last checkpoints, appending `log.jsonl` and refreshing `report.html`
 * under `runs/<name>/`. Flags override the file. Ctrl-C checkpoints and stops; `--resume` continues exactly.
 */
import { dirname, join } from 'node:path';
import {
  FedcxrError,
  openCocoDataset,
  runTraining,
  type TrainEvent,
  trainConfigSchema,
  writeRunReport,
} from '@fedcxr/core';
import '@fedcxr/models-frcnn';
import type { Command } from 'commander';
import { action, createProgress, loadConfig, type Progress, withCommonOptions } from '../framework.js';
import { reportHeatmaps, supportsHeatmaps } from '../inference/report-heatmaps.js';

interface TrainFlags {
  config?: string;
  resume?: boolean;
  name?: string;
  runsDir?: string;
  train?: string;
  val?: string;
  imageDir?: string;
  limit?: string;
  epochs?: string;
  batchSize?: string;
  lr?: string;
  seed?: string;
  detector?: string;
  backbone?: string;
  minSize?: string;
  maxSize?: string;
  weights?: string;
  backend?: string;
  report?: boolean;
}

const numberFlag = (value: string | undefined) => (value === undefined ? undefined : Number(value));

export function registerTrainCommands(program: Command): void {
  withCommonOptions(
    program
      .command('train')
      .description(
        "train a detector (default: the seed's recipe — Faster R-CNN, SGD-Nesterov lr 0.003, batch 4, 18 epochs), validating every epoch, into runs/<name>/",
      )
      .option('-c, --config <file>', 'training config (YAML or JSON); flags below override it')
      .option('--resume', 'continue the run from its last checkpoint (exactly where it stopped)')
      .option('--name <name>', 'run name (runs/<name>/)')
      .option('--runs-dir <dir>', 'where runs live (default runs)')
      .option('--train <coco.json>', 'training annotations (data.train)')
      .option('--val <coco.json>', 'validation annotations (data.val)')
      .option('--image-dir <dir>', 'folder of the images (data.imageDir; default: the annotations folder)')
      .option('--limit <n>', 'use only the first n images of each split (data.limit)')
      .option('--epochs <n>', 'epochs')
      .option('--batch-size <n>', 'images per step')
      .option('--lr <x>', 'base learning rate (optimizer.lr)')
      .option('--seed <n>', 'random seed (sampling, augmentation, initialization)')
      .option('--detector <name>', 'detector registry name (model.detector)')
      .option('--backbone <name>', 'backbone registry name (model.backbone)')
      .option('--min-size <px>', 'shorter image side fed to the detector (model.minSize)')
      .option('--max-size <px>', 'longer side limit (model.maxSize)')
      .option('--weights <path>', 'starting weights: a model directory or .safetensors (model.weights)')
      .option('--backend <name>', 'tensor engine backend: auto, tensorflow, webgpu, wasm, cpu (engine.backend)')
      .option('--no-report', 'do not write report.html'),
  ).action(
    action(async (ctx, flags: TrainFlags) => {
      if (!flags.config && !flags.train) {
        throw new FedcxrError('usage', 'give --config <file> or at least --train <coco.json>');
      }
      const config = await loadConfig(trainConfigSchema, flags.config, {
        name: flags.name,
        runsDir: flags.runsDir,
        epochs: numberFlag(flags.epochs),
        batchSize: numberFlag(flags.batchSize),
        seed: numberFlag(flags.seed),
        'data.train': flags.train,
        'data.val': flags.val,
        'data.imageDir': flags.imageDir,
        'data.limit': numberFlag(flags.limit),
        'optimizer.lr': numberFlag(flags.lr),
        'model.detector': flags.detector,
        'model.backbone': flags.backbone,
        'model.minSize': numberFlag(flags.minSize),
        'model.maxSize': numberFlag(flags.maxSize),
        'model.weights': flags.weights,
        'engine.backend': flags.backend,
      });
      const controller = new AbortController();
      const onSigint = () => {
        ctx.log('stopping after this step (checkpointing); run again with --resume to continue');
        controller.abort();
      };
      process.once('SIGINT', onSigint);
      let progress: Progress | undefined;
      const onEvent = (event: TrainEvent) => {
        switch (event.type) {
          case 'epoch-start':
            progress = createProgress(ctx, `epoch ${event.epoch + 1}/${event.epochs}`, event.steps);
            if (event.startStep > 0) progress.tick(event.startStep, '(resumed)');
            break;
          case 'step': {
            const parts = Object.entries(event.losses)
              .filter(([name]) => name !== 'loss' && name !== 'grad_norm')
              .map(([name, value]) => `${name.replace(/^loss_/, '')} ${value.toFixed(3)}`);
            progress?.tick(
              1,
              `loss ${event.losses.loss.toFixed(3)} (${parts.join(', ')}) lr ${event.lr.toExponential(1)}`,
            );
            break;
          }
          case 'validation-start':
            progress?.stop();
            progress = undefined;
            ctx.log(`validating on ${event.images} images…`);
            break;
          case 'epoch-end': {
            progress?.stop();
            progress = undefined;
            const r = event.record;
            const val = r.val
              ? `; val loss ${r.val.loss.toFixed(3)}, AP ${r.val.AP.toFixed(3)}, AP50 ${r.val.AP50.toFixed(3)}, AR100 ${r.val.AR100.toFixed(3)}`
              : '';
            ctx.log(`epoch ${r.epoch}: train loss ${r.train.loss.toFixed(3)}${val}${r.best ? ' (best so far)' : ''}`);
            break;
          }
          case 'checkpoint':
            break;
        }
      };
      try {
        const outcome = await runTraining(config, {
          resume: flags.resume,
          onEvent,
          log: ctx.log,
          signal: controller.signal,
          report: flags.report !== false,
        });
        const checkpoints = {
          best: outcome.best ? join(outcome.runDir, 'checkpoints', outcome.best.tag) : null,
          last: join(outcome.runDir, 'last'),
        };
        let heatmaps = 0;
        if (outcome.report && checkpoints.best && config.data.val && supportsHeatmaps(config.model.backbone)) {
          ctx.log('adding EigenCAM heat maps of the best checkpoint to the report…');
          const val = await openCocoDataset(config.data.val, {
            imageDir: config.data.imageDir,
            limit: config.data.limit,
          });
          const images = await reportHeatmaps(
            checkpoints.best,
            val.coco,
            config.data.imageDir ?? dirname(config.data.val),
            config.validation.reportImages > 0 ? Math.min(4, config.validation.reportImages) : 0,
          );
          heatmaps = images.length;
          if (images.length > 0) await writeRunReport(outcome, { val }, { heatmaps: images });
        }
        const lastRecord = outcome.history[outcome.history.length - 1];
        return {
          data: {
            run: outcome.runDir,
            engine: outcome.engine.backend,
            trainImages: outcome.trainImages,
            valImages: outcome.valImages,
            steps: outcome.stepsDone,
            best: outcome.best,
            checkpoints,
            report: outcome.report ?? null,
            heatmaps,
            log: join(outcome.runDir, 'log.jsonl'),
            epochs: outcome.history,
          },
          human: [
            `trained ${outcome.history.length} epochs (${outcome.stepsDone} steps) on ${outcome.trainImages} images with the ${outcome.engine.backend} backend`,
            lastRecord?.val
              ? `last epoch: AP ${lastRecord.val.AP.toFixed(3)}, AP50 ${lastRecord.val.AP50.toFixed(3)}`
              : '',
            outcome.best
              ? `best: epoch ${outcome.best.epoch} (${outcome.best.metric} ${outcome.best.value.toFixed(4)}) → ${checkpoints.best}`
              : '',
            `log: ${join(outcome.runDir, 'log.jsonl')}`,
            outcome.report ? `report: ${outcome.report}` : '',
          ]
            .filter(Boolean)
            .join('\n'),
        };
      } finally {
        progress?.stop();
        process.removeListener('SIGINT', onSigint);
      }
    }),
  );
}
