/** Builds and writes `<runDir>/report.html` from a training run's state (called after every epoch). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DetectionDataset } from '../train/dataset.js';
import type { TrainRunSummary, ValidationDetail } from '../train/loop.js';
import { predictionImages, type ReportImage, writeTrainingReport } from './html.js';

export async function writeRunReport(
  run: TrainRunSummary,
  data: { val?: DetectionDataset },
  options: { heatmaps?: ReportImage[] } = {},
): Promise<string> {
  const detail = await readValidation(join(run.runDir, 'best-validation.json'));
  const { config } = run;
  const predictions =
    detail && data.val
      ? await predictionImages(detail.samples, (i) => data.val!.loadImage(i), data.val.categories, {
          title: (imageId) => {
            const image = data.val?.coco.images.find((im) => im.id === imageId);
            return image ? `${image.file_name} (epoch ${detail.epoch})` : `image ${imageId}`;
          },
        })
      : [];
  return writeTrainingReport(run.runDir, {
    title: `fedcxr training report: ${config.name}`,
    facts: {
      detector: `${config.model.detector} (${config.model.backbone})`,
      classes: run.classes.slice(1).join(', '),
      'training data': config.data.train,
      'validation data': config.data.val ?? '(none)',
      normalization: config.data.normalization,
      recipe: `SGD lr ${config.optimizer.lr}, momentum ${config.optimizer.momentum}${config.optimizer.nesterov ? ' Nesterov' : ''}, weight decay ${config.optimizer.weightDecay}, batch ${config.batchSize}, ${config.epochs} epochs, ${config.schedule.type} schedule`,
      augmentation: `rotation ±${config.augmentation.rotationDegrees}°, brightness ±${config.augmentation.brightness}, contrast ±${config.augmentation.contrast}${config.augmentation.scale ? `, scale ${config.augmentation.scale.join('–')}` : ''}, horizontal flip ${config.augmentation.horizontalFlip ? 'on' : 'off'}`,
      seed: config.seed,
      'epochs done': run.history.length,
      'optimizer steps': run.stepsDone,
    },
    history: run.history,
    best: run.best,
    validation: detail,
    predictions,
    heatmaps: options.heatmaps,
  });
}

async function readValidation(file: string): Promise<ValidationDetail | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as ValidationDetail;
  } catch {
    return undefined;
  }
}
