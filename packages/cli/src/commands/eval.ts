/**
 * `cxr eval --gt <coco.json> --dt <results.json>` (or `--model <dir|file.onnx> --data <coco.json>`, which predicts
 * the data set's images first): COCO bbox metrics identical to pycocotools, per-class AP,
 * precision-recall curves, the RSNA challenge mAP, and optionally AP at one IoU (`--iou 0.4`), PASCAL VOC mAP
 * (`--metric voc`, VinDr-CXR's metric with `--iou 0.4`) and FROC.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  COCO_STAT_NAMES,
  type CocoDataset,
  type CocoResult,
  evaluateCoco,
  evaluateVoc,
  FedcxrError,
  type FrocHitCriterion,
  froc,
  initEngine,
  precisionRecallCurve,
  rsnaMap,
  type VocApMethod,
  writeJsonAtomic,
} from '@fedcxr/core';
import { loadDetector } from '@fedcxr/models-frcnn';
import type { Command } from 'commander';
import { action, type CommandContext, createProgress, withCommonOptions } from '../framework.js';
import { type DatasetPredictor, predictCocoDataset } from '../inference/evaluate.js';
import { preparationFromCard } from '../inference/input.js';
import { openInferenceModel } from '../inference/model.js';

interface EvalFlags {
  gt?: string;
  dt?: string;
  model?: string;
  data?: string;
  images?: string;
  saveResults?: string;
  iou?: string;
  froc?: boolean;
  classAgnostic?: boolean;
  frocHit?: string;
  frocIou?: string;
  metric: string;
  vocMethod: string;
  engine: string;
}

async function readJsonFile(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FedcxrError('file_unreadable', `cannot read ${what}: ${(error as Error).message}`, { file });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FedcxrError('invalid_json', `${what} is not valid JSON: ${(error as Error).message}`, { file });
  }
}

function parseFraction(flag: string, value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0 || number > 1) {
    throw new FedcxrError('usage', `${flag} must be a number in (0, 1], got ${JSON.stringify(value)}`);
  }
  return number;
}

/** --gt/--dt read from files, or --model/--data: the model's detections on the data set's images. */
async function loadEvaluationInputs(
  ctx: CommandContext,
  flags: EvalFlags,
): Promise<{ gt: CocoDataset; dt: CocoResult[]; files: { gtFile: string; dtFile: string } }> {
  if (flags.model || flags.data) {
    if (!flags.model || !flags.data || flags.dt) {
      throw new FedcxrError('usage', 'use --model with --data (and without --dt), or --gt with --dt');
    }
    const gt = (await readJsonFile(flags.data, 'data set')) as CocoDataset;
    const opened = await openDatasetPredictor(flags.model, flags.engine);
    const progress = createProgress(ctx, 'predicting', gt.images.length);
    let dt: CocoResult[];
    try {
      let reported = 0;
      dt = await predictCocoDataset(opened, gt, flags.images ?? dirname(flags.data), (done) => {
        progress.tick(done - reported);
        reported = done;
      });
    } finally {
      progress.stop();
      await opened.dispose();
    }
    if (flags.saveResults) await writeJsonAtomic(flags.saveResults, dt);
    return { gt, dt, files: { gtFile: flags.data, dtFile: flags.saveResults ?? `${flags.model} detections` } };
  }
  if (!flags.gt || !flags.dt) throw new FedcxrError('usage', 'give --gt and --dt, or --model and --data');
  const gt = (await readJsonFile(flags.gt, 'ground truth')) as CocoDataset;
  const dt = (await readJsonFile(flags.dt, 'detections')) as CocoResult[];
  return { gt, dt, files: { gtFile: flags.gt, dtFile: flags.dt } };
}

/**
 * The model for `--model`: on ONNX Runtime (default: the CPU inference engine), or with `--engine tfjs` on the
 * training engine `auto` picks (torch on CUDA where it is built, so a GPU machine predicts on its GPU).
 */
async function openDatasetPredictor(
  model: string,
  engine: string,
): Promise<DatasetPredictor & { dispose(): Promise<void> | void }> {
  if (engine === 'onnx') {
    const opened = await openInferenceModel(model);
    return { ...opened, dispose: () => opened.model.dispose() };
  }
  if (engine !== 'tfjs') throw new FedcxrError('usage', `--engine must be onnx or tfjs, got ${JSON.stringify(engine)}`);
  await initEngine({ backend: 'auto' });
  const { detector, card } = await loadDetector(model);
  const recorded = Array.isArray(card.categoryIds) ? card.categoryIds : null;
  return {
    model: detector,
    preparation: preparationFromCard(card),
    classes: detector.classes,
    categoryIds: [0, ...(recorded ?? detector.classes.slice(1).map((_, i) => i + 1))],
    dispose: () => detector.dispose(),
  };
}

const fmt = (value: number) => (value < 0 ? '   -  ' : value.toFixed(4));

export function registerEvalCommands(program: Command): void {
  withCommonOptions(
    program
      .command('eval')
      .description(
        'evaluate detections against COCO ground truth: the 12 pycocotools stats, per-class AP/AP50, PR curves, RSNA mAP, optional AP at one IoU and FROC',
      )
      .option('--gt <coco.json>', 'ground truth (COCO dataset)')
      .option('--dt <results.json>', 'detections (COCO results list: image_id, category_id, bbox, score)')
      .option('--model <dir|file.onnx>', 'instead of --dt: run this model on every image of --data')
      .option('--data <coco.json>', 'with --model: the COCO data set to predict and score (also the ground truth)')
      .option('--images <dir>', 'with --model: folder the file_names are relative to (default: the JSON folder)')
      .option('--save-results <file>', 'with --model: also write the detections as COCO results')
      .option(
        '--engine <name>',
        'with --model: onnx (ONNX Runtime) or tfjs (the training engine, e.g. torch on CUDA)',
        'onnx',
      )
      .option('--iou <t>', 'also report AP at this single IoU threshold (VinBigData uses 0.4)')
      .option(
        '--metric <list>',
        'metrics beside COCO: voc (PASCAL VOC mAP at --iou, default 0.5; VinDr-CXR: --iou 0.4 --metric voc)',
        'coco',
      )
      .option('--voc-method <m>', 'VOC AP interpolation: voc2010 (all points) or voc2007 (11 points)', 'voc2010')
      .option('--class-agnostic', 'COCO metrics over all categories pooled (pycocotools useCats = 0)')
      .option('--froc', 'also report FROC: sensitivity at 1/8 … 8 false positives per image')
      .option('--froc-hit <kind>', 'FROC hit criterion: iou (IoU ≥ --froc-iou) or center (box center inside)', 'iou')
      .option('--froc-iou <t>', 'IoU a detection needs to hit a ground-truth box for FROC', '0.5'),
  ).action(
    action(async (ctx, flags: EvalFlags) => {
      const { gt, dt, files } = await loadEvaluationInputs(ctx, flags);
      const iou = flags.iou === undefined ? undefined : parseFraction('--iou', flags.iou);
      let hit: FrocHitCriterion | undefined;
      if (flags.froc) {
        if (flags.frocHit === 'center') hit = { kind: 'center' };
        else if (flags.frocHit === 'iou' || flags.frocHit === undefined) {
          hit = { kind: 'iou', threshold: parseFraction('--froc-iou', flags.frocIou ?? '0.5') };
        } else throw new FedcxrError('usage', `--froc-hit must be iou or center, got ${JSON.stringify(flags.frocHit)}`);
      }

      const metrics = new Set(
        flags.metric
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean),
      );
      for (const name of metrics) {
        if (name !== 'coco' && name !== 'voc') {
          throw new FedcxrError('usage', `--metric: unknown metric ${JSON.stringify(name)} (choose from coco, voc)`);
        }
      }
      if (flags.vocMethod !== 'voc2010' && flags.vocMethod !== 'voc2007') {
        throw new FedcxrError(
          'usage',
          `--voc-method must be voc2010 or voc2007, got ${JSON.stringify(flags.vocMethod)}`,
        );
      }
      const vocMethod: VocApMethod = flags.vocMethod;

      const started = performance.now();
      const useCats = !flags.classAgnostic;
      const coco = evaluateCoco(gt, dt, { ...files, useCats });
      const atIou =
        iou === undefined ? undefined : evaluateCoco(gt, dt, { ...files, useCats, params: { iouThrs: [iou] } });
      const rsna = rsnaMap(gt, dt, files);
      const frocResult = hit ? froc(gt, dt, { ...files, hit }) : undefined;
      const voc = metrics.has('voc')
        ? evaluateVoc(gt, dt, { ...files, iou: iou ?? 0.5, method: vocMethod })
        : undefined;
      ctx.log(
        `evaluated ${dt.length} detections on ${coco.imgIds.length} images in ${((performance.now() - started) / 1000).toFixed(2)} s`,
      );

      const prCurves = {
        iou: 0.5,
        area: 'all',
        max_dets: coco.params.maxDets[coco.params.maxDets.length - 1],
        recall: [...coco.params.recThrs],
        per_category: coco.perCategory.map((category, k) => ({
          id: category.id,
          name: category.name,
          precision: precisionRecallCurve(coco, k, 0.5)?.precision ?? [],
        })),
      };
      const apAtIou = atIou && {
        iou,
        AP: atIou.stats[0],
        per_category: atIou.perCategory.map(({ id, name, AP }) => ({ id, name, AP })),
      };
      const data = {
        stats: coco.stats,
        stat_names: COCO_STAT_NAMES,
        per_category: coco.perCategory.map(({ id, name, AP, AP50, AP75, AR100, numGt }) => ({
          id,
          name,
          AP,
          AP50,
          AP75,
          AR100,
          num_gt: numGt,
        })),
        pr_curves: prCurves,
        ap_at_iou: apAtIou ?? null,
        voc: voc
          ? {
              iou: voc.iou,
              method: voc.method,
              mAP: voc.mAP,
              per_category: voc.perCategory.map(({ id, name, AP, numGt, numDetections, truePositives }) => ({
                id,
                name,
                AP,
                num_gt: numGt,
                num_detections: numDetections,
                true_positives: truePositives,
              })),
            }
          : null,
        rsna_map: {
          map: rsna.map,
          thresholds: rsna.thresholds,
          per_threshold: rsna.perThreshold,
          images_scored: rsna.imagesScored,
          images_skipped: rsna.imagesSkipped,
        },
        froc: frocResult
          ? {
              hit: frocResult.hit,
              fp_rates: frocResult.fpRates,
              sensitivities: frocResult.sensitivities,
              score: frocResult.score,
              num_targets: frocResult.numTargets,
              num_images: frocResult.numImages,
              curve: {
                fps_per_image: frocResult.curve.fpsPerImage,
                sensitivity: frocResult.curve.sensitivity,
                thresholds: frocResult.curve.thresholds,
              },
            }
          : null,
      };

      const lines: string[] = [];
      const labels = [
        'AP @[IoU=0.50:0.95 | area=   all | maxDets=100]',
        'AP @[IoU=0.50      | area=   all | maxDets=100]',
        'AP @[IoU=0.75      | area=   all | maxDets=100]',
        'AP @[IoU=0.50:0.95 | area= small | maxDets=100]',
        'AP @[IoU=0.50:0.95 | area=medium | maxDets=100]',
        'AP @[IoU=0.50:0.95 | area= large | maxDets=100]',
        'AR @[IoU=0.50:0.95 | area=   all | maxDets=  1]',
        'AR @[IoU=0.50:0.95 | area=   all | maxDets= 10]',
        'AR @[IoU=0.50:0.95 | area=   all | maxDets=100]',
        'AR @[IoU=0.50:0.95 | area= small | maxDets=100]',
        'AR @[IoU=0.50:0.95 | area=medium | maxDets=100]',
        'AR @[IoU=0.50:0.95 | area= large | maxDets=100]',
      ];
      coco.stats.forEach((value, i) => {
        lines.push(`${labels[i]} = ${value.toFixed(3)}`);
      });
      const width = Math.max(8, ...coco.perCategory.map((c) => c.name.length));
      lines.push('', `${'category'.padEnd(width)}  ${'#gt'.padStart(5)}  AP      AP50    AP75    AR100`);
      for (const c of coco.perCategory) {
        lines.push(
          `${c.name.padEnd(width)}  ${String(c.numGt).padStart(5)}  ${fmt(c.AP)}  ${fmt(c.AP50)}  ${fmt(c.AP75)}  ${fmt(c.AR100)}`,
        );
      }
      lines.push('', `RSNA challenge mAP (IoU 0.40–0.75): ${rsna.map.toFixed(4)} over ${rsna.imagesScored} images`);
      if (apAtIou) lines.push(`AP @[IoU=${iou}]: ${fmt(apAtIou.AP)}`);
      if (voc) {
        const method = voc.method === 'voc2010' ? 'VOC 2010, all points' : 'VOC 2007, 11 points';
        lines.push(`PASCAL VOC mAP @[IoU=${voc.iou}] (${method}): ${voc.mAP.toFixed(4)}`);
        for (const c of voc.perCategory) {
          lines.push(
            `  ${c.name.padEnd(width)}  ${String(c.numGt).padStart(5)}  ${c.AP === null ? '   -  ' : c.AP.toFixed(4)}`,
          );
        }
      }
      if (frocResult) {
        const at = frocResult.fpRates.map((rate, i) => `${rate}:${frocResult.sensitivities[i].toFixed(3)}`).join('  ');
        const rule = frocResult.hit.kind === 'iou' ? `IoU ≥ ${frocResult.hit.threshold}` : 'center inside';
        lines.push(`FROC (hit: ${rule}) sensitivity at FP/image  ${at}`, `FROC score: ${frocResult.score.toFixed(4)}`);
      }
      return { data, human: lines.join('\n') };
    }),
  );
}
