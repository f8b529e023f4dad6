/**
 * `cxr explain --model <dir|file.onnx> <image> --method eigencam|ablationcam [--detection i] --out <png>`:
 * a heat map of what the detector looked at, blended over the image with the explained boxes drawn.
 */
import { drawBoxesForDisplay, encodeRgbPng, FedcxrError, heatmapOverlay, writeFileAtomic } from '@fedcxr/core';
import {
  CAM_GRIDS,
  type CamGrid,
  type CamMethod,
  explainDetections,
  renormalizeCamInBoxes,
} from '@fedcxr/models-frcnn';
import type { Command } from 'commander';
import { action, createProgress, withCommonOptions } from '../framework.js';
import { prepareInput } from '../inference/input.js';
import { openInferenceModel } from '../inference/model.js';

interface ExplainFlags {
  model: string;
  method: string;
  detection?: string;
  scoreThr: string;
  out: string;
  batchSize: string;
  ratio: string;
  grid: string;
  withinBoxes?: boolean;
}

export function registerExplainCommands(program: Command): void {
  withCommonOptions(
    program
      .command('explain')
      .description(
        'heat map of what a detection depends on: EigenCAM (principal component of the FPN features) or AblationCAM (score drop when feature channels are ablated)',
      )
      .argument('<image>', 'a DICOM, PNG or JPEG file')
      .requiredOption('--model <dir|file.onnx>', 'model directory or exported .onnx file')
      .option('--method <name>', 'eigencam or ablationcam', 'ablationcam')
      .option('--detection <i>', 'explain only detection i (0 = best); default: every detection scoring ≥ --score-thr')
      .option('--score-thr <t>', 'score threshold for the detections explained by default', '0.5')
      .requiredOption('--out <png>', 'where to write the overlay PNG')
      .option('--batch-size <n>', 'AblationCAM: ablated passes per head run', '32')
      .option('--ratio <r>', 'AblationCAM: fraction of channels to ablate (1 = all, as the paper)', '1')
      .option(
        '--grid <level>',
        `FPN level whose grid the CAM is computed on: ${CAM_GRIDS.join(' | ')} (pool: pytorch-grad-cam's, the coarsest; auto: pool unless it has under 8 cells a side, as on small inputs)`,
        'auto',
      )
      .option(
        '--within-boxes',
        "show the heat inside the explained boxes only, min-max scaled in each (pytorch-grad-cam's renormalize_cam_in_bounding_boxes)",
      ),
  ).action(
    action(async (ctx, file: string, flags: ExplainFlags) => {
      if (flags.method !== 'eigencam' && flags.method !== 'ablationcam') {
        throw new FedcxrError('usage', `--method must be eigencam or ablationcam, got ${JSON.stringify(flags.method)}`);
      }
      const detection = flags.detection === undefined ? undefined : Number(flags.detection);
      if (detection !== undefined && !(Number.isInteger(detection) && detection >= 0)) {
        throw new FedcxrError(
          'usage',
          `--detection must be a whole number ≥ 0, got ${JSON.stringify(flags.detection)}`,
        );
      }
      if (!(CAM_GRIDS as readonly string[]).includes(flags.grid)) {
        throw new FedcxrError(
          'usage',
          `--grid must be one of ${CAM_GRIDS.join(', ')}; got ${JSON.stringify(flags.grid)}`,
        );
      }
      const ratio = Number(flags.ratio);
      if (!(ratio > 0 && ratio <= 1)) throw new FedcxrError('usage', `--ratio must be in (0, 1], got ${flags.ratio}`);
      const { model, preparation, classes } = await openInferenceModel(flags.model);
      try {
        const input = await prepareInput(file, preparation);
        let progress: ReturnType<typeof createProgress> | undefined;
        let reported = 0;
        const result = await explainDetections(model, input.image, {
          method: flags.method as CamMethod,
          detection,
          scoreThreshold: Number(flags.scoreThr),
          batchSize: Number(flags.batchSize),
          ratioChannelsToAblate: ratio,
          grid: flags.grid as CamGrid,
          onProgress: (done, total) => {
            progress ??= createProgress(ctx, 'ablating channels', total);
            progress.tick(done - reported);
            reported = done;
          },
        });
        progress?.stop();
        const { width, height, pixels } = input.image;
        const overlay = drawBoxesForDisplay(
          heatmapOverlay(
            pixels,
            flags.withinBoxes
              ? renormalizeCamInBoxes(
                  result.cam,
                  width,
                  height,
                  result.explained.map((d) => d.box),
                )
              : result.cam,
            width,
            height,
            0.45,
          ),
          result.explained.map((d) => ({ box: d.box, text: `${classes[d.label]} ${d.score.toFixed(2)}` })),
        );
        await writeFileAtomic(flags.out, encodeRgbPng(overlay));
        const explained = result.explained.map((d) => {
          const [x1, y1, x2, y2] = input.toOriginal(d.box);
          return { bbox: [x1, y1, x2 - x1, y2 - y1], label: classes[d.label], score: d.score };
        });
        return {
          data: {
            image: file,
            method: result.method,
            out: flags.out,
            explained,
            original_score: result.originalScore ?? null,
            grid: result.grid,
            within_boxes: Boolean(flags.withinBoxes),
          },
          human: `${result.method} of ${explained.length} detection(s) on ${file} → ${flags.out}`,
        };
      } finally {
        await model.dispose();
      }
    }),
  );
}
