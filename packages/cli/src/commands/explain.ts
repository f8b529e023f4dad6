/**
 * `cxr explain --model <dir|file.onnx> <image> --method eigencam|ablationcam|occlusion [--detection i] --out <png>`:
 * a heat map of what the detector looked at, blended over the image with the explained boxes drawn, and where
 * the map is hottest (inside an explained box or not), so a script can tell a map that points at the finding.
 */
import { drawBoxesForDisplay, encodeRgbPng, FedcxrError, heatmapOverlay, writeFileAtomic } from '@fedcxr/core';
import {
  CAM_GRIDS,
  CAM_METHODS,
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
  batchSize?: string;
  ratio: string;
  patch?: string;
  grid: string;
  withinBoxes?: boolean;
}

export function registerExplainCommands(program: Command): void {
  withCommonOptions(
    program
      .command('explain')
      .description(
        'heat map of what a detection depends on: EigenCAM (principal component of the FPN features), AblationCAM (score drop when feature channels are ablated) or occlusion (score drop when a patch of the image is covered)',
      )
      .argument('<image>', 'a DICOM, PNG or JPEG file')
      .requiredOption('--model <dir|file.onnx>', 'model directory or exported .onnx file')
      .option('--method <name>', CAM_METHODS.join(', '), 'ablationcam')
      .option('--detection <i>', 'explain only detection i (0 = best); default: every detection scoring ≥ --score-thr')
      .option('--score-thr <t>', 'score threshold for the detections explained by default', '0.5')
      .requiredOption('--out <png>', 'where to write the overlay PNG')
      .option(
        '--batch-size <n>',
        'passes per run: ablated head runs (AblationCAM, default 32), occluded images (occlusion, default 8)',
      )
      .option('--ratio <r>', 'AblationCAM: fraction of channels to ablate (1 = all, as the paper)', '1')
      .option(
        '--patch <px>',
        "occlusion: the patch's side in pixels of the image as prepared for the model (the size it was trained at; default an eighth of the shorter side)",
      )
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
      if (!(CAM_METHODS as readonly string[]).includes(flags.method)) {
        throw new FedcxrError(
          'usage',
          `--method must be one of ${CAM_METHODS.join(', ')}; got ${JSON.stringify(flags.method)}`,
        );
      }
      const whole = (name: string, value: string | undefined) => {
        if (value === undefined) return undefined;
        const n = Number(value);
        if (!(Number.isInteger(n) && n >= 1))
          throw new FedcxrError('usage', `${name} must be a whole number ≥ 1, got ${JSON.stringify(value)}`);
        return n;
      };
      const batchSize = whole('--batch-size', flags.batchSize);
      const patch = whole('--patch', flags.patch);
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
          batchSize,
          ratioChannelsToAblate: ratio,
          patch,
          grid: flags.grid as CamGrid,
          onProgress: (done, total) => {
            progress ??= createProgress(
              ctx,
              flags.method === 'occlusion' ? 'occluding patches' : 'ablating channels',
              total,
            );
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
        const peak = hottestPixel(result.cam, width);
        const peakInBox = result.explained.some(
          ({ box: [x1, y1, x2, y2] }) =>
            peak.x + 0.5 >= x1 && peak.x + 0.5 <= x2 && peak.y + 0.5 >= y1 && peak.y + 0.5 <= y2,
        );
        const [peakX, peakY] = input.toOriginal([peak.x + 0.5, peak.y + 0.5, peak.x + 0.5, peak.y + 0.5]);
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
            occlusion: result.occlusion ?? null,
            within_boxes: Boolean(flags.withinBoxes),
            // The whole-image map's hottest pixel (original pixels), whether or not --within-boxes is shown.
            peak: { x: peakX, y: peakY },
            peak_in_box: peakInBox,
          },
          human: `${result.method} of ${explained.length} detection(s) on ${file} → ${flags.out} (hottest ${peakInBox ? 'inside' : 'outside'} the explained box${explained.length > 1 ? 'es' : ''})`,
        };
      } finally {
        await model.dispose();
      }
    }),
  );
}

/** The first pixel with the map's largest value. */
function hottestPixel(cam: Float32Array, width: number): { x: number; y: number } {
  let best = 0;
  for (let i = 1; i < cam.length; i++) if (cam[i] > cam[best]) best = i;
  return { x: best % width, y: Math.floor(best / width) };
}
