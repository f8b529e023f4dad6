/**
 * Importing torchvision checkpoints into the project's model directory: the full Faster R-CNN layout
 * (`fasterrcnn_resnet50_fpn_coco-258fb6c6.pth`: backbone.body.*, backbone.fpn.*, rpn.*, roi_heads.*) and the
 * ImageNet classification layouts (resnet18/50/101, swin_t: no `backbone.body.` prefix, an `fc.`/`head.`
 * classifier to drop, swin's final `norm.`). Tensors stay in torchvision layout (the model directory's
 * safetensors can be read by PyTorch as is); ops/layout.ts converts when they enter tfjs variables.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  backbones,
  FedcxrError,
  type NamedTensors,
  type Preprocessing,
  readSafetensors,
  saveModelDir,
  TORCHVISION_PREPROCESSING,
} from '@fedcxr/core';
import { classNamesFor } from '../detector/faster-rcnn.js';
import { predictorNumClasses } from '../detector/roi-heads.js';
import { torchShape } from '../ops/layout.js';
import { weightsForFile } from './download.js';
import { COCO_CLASSES } from './known.js';
import { readPth } from './pth.js';

export { COCO_CLASSES } from './known.js';

/**
 * The other names --arch accepts, from the backbone registry's aliases: torchvision's detector builder
 * names (fasterrcnn_resnet50_fpn → resnet50_fpn).
 */
export function archAliases(): Record<string, string> {
  return Object.fromEntries(backbones.all().flatMap((entry) => entry.aliases.map((alias) => [alias, entry.name])));
}

/** The registered backbone name for an --arch value (a backbone name or a torchvision detector name). */
export function backboneForArch(arch: string): string {
  const name = backbones.resolve(arch);
  if (!name) {
    throw new FedcxrError(
      'usage',
      `unknown architecture "${arch}"; use one of ${[...backbones.list(), ...Object.keys(archAliases())].join(', ')}`,
    );
  }
  return name;
}

export type CheckpointLayout = 'detector' | 'imagenet';

export interface ConvertedCheckpoint {
  layout: CheckpointLayout;
  /** torchvision FasterRCNN keys, torchvision layouts. */
  weights: NamedTensors;
  /** Source keys not carried over (classifier heads, bookkeeping buffers). */
  dropped: string[];
  /** Foreground classes of the checkpoint's box predictor, when it has one. */
  numClasses?: number;
}

const PREDICTOR = 'roi_heads.box_predictor.';

/** Reads a .pth or .safetensors file's tensors. */
export async function readCheckpoint(file: string): Promise<NamedTensors> {
  if (file.endsWith('.safetensors')) return (await readSafetensors(file)).tensors;
  const head = new Uint8Array(8);
  try {
    const handle = await open(file, 'r');
    try {
      await handle.read(head, 0, 8, 0);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new FedcxrError('file_unreadable', `cannot read: ${(error as Error).message}`, { file });
  }
  // safetensors under another extension: an 8-byte length then '{'.
  if (head[0] !== 0x50 && head[0] !== 0x80 && head[7] === 0) return (await readSafetensors(file)).tensors;
  return readPth(file);
}

/**
 * Maps a checkpoint's keys onto the FasterRCNN layout for `backbone` and checks names and shapes against it.
 * Detector checkpoints keep every key (minus num_batches_tracked); ImageNet ones get `backbone.body.`.
 */
export function convertCheckpoint(source: NamedTensors, backbone: string, file = 'checkpoint'): ConvertedCheckpoint {
  const keys = [...source.keys()];
  const layout: CheckpointLayout = keys.some((k) => k.startsWith('backbone.')) ? 'detector' : 'imagenet';
  const weights: NamedTensors = new Map();
  const dropped: string[] = [];
  const swin = backbone.startsWith('swin');
  for (const [key, tensor] of source) {
    if (key.endsWith('.num_batches_tracked')) {
      dropped.push(key);
      continue;
    }
    if (layout === 'detector') {
      weights.set(key, tensor);
      continue;
    }
    const classifier = swin ? /^(head|norm)\./.test(key) : key.startsWith('fc.');
    if (classifier) dropped.push(key);
    else weights.set(`backbone.body.${key}`, tensor);
  }
  checkAgainstBackbone(weights, backbone, layout, file);
  return { layout, weights, dropped, numClasses: predictorNumClasses(weights, PREDICTOR) };
}

/** Every `backbone.body.*` key must exist in the backbone with the same shape, and the body must be complete. */
function checkAgainstBackbone(weights: NamedTensors, backbone: string, layout: CheckpointLayout, file: string): void {
  const expected = backboneShapes(backbone);
  const unexpected: string[] = [];
  for (const [key, tensor] of weights) {
    if (!key.startsWith('backbone.')) continue;
    const shape = expected.get(key);
    if (!shape) {
      if (!key.endsWith('.relative_position_index')) unexpected.push(key);
      continue;
    }
    if (shape.join(',') !== tensor.shape.join(',')) {
      throw new FedcxrError(
        'weights_mismatch',
        `${key} has shape [${tensor.shape}] but ${backbone} needs [${shape}]: is --arch right?`,
        { file },
      );
    }
  }
  const missingBody = [...expected.keys()].filter((key) => key.startsWith('backbone.body.') && !weights.has(key));
  const missingFpn = [...expected.keys()].filter((key) => key.startsWith('backbone.fpn.') && !weights.has(key));
  const problems: string[] = [];
  if (unexpected.length > 0)
    problems.push(`${unexpected.length} keys ${backbone} does not have (${unexpected.slice(0, 3).join(', ')}…)`);
  if (missingBody.length > 0)
    problems.push(`${missingBody.length} ${backbone} keys missing (${missingBody.slice(0, 3).join(', ')}…)`);
  if (layout === 'detector' && missingFpn.length > 0) problems.push(`${missingFpn.length} FPN keys missing`);
  if (problems.length > 0) {
    throw new FedcxrError('weights_mismatch', `not a ${backbone} ${layout} checkpoint: ${problems.join('; ')}`, {
      file,
    });
  }
}

const shapeCache = new Map<string, Map<string, number[]>>();

/** torchvision-layout shapes of a backbone's variables (built once, then disposed). */
export function backboneShapes(backbone: string): Map<string, number[]> {
  let shapes = shapeCache.get(backbone);
  if (!shapes) {
    const built = backbones.build(backbone, { randomInit: false });
    shapes = new Map(
      [...built.variables()].map(([key, variable]) => {
        const layout = built.layoutOf?.(key) ?? (variable.rank === 4 ? 'conv' : 'plain');
        return [key, torchShape(variable.shape, layout)];
      }),
    );
    built.dispose?.();
    shapeCache.set(backbone, shapes);
  }
  return shapes;
}

/**
 * For a class-count change: removes `roi_heads.box_predictor.*` when its class count differs from
 * `numClasses` (foreground classes), so the detector re-initializes the predictor. Returns the dropped keys.
 */
export function dropBoxPredictor(
  weights: NamedTensors,
  numClasses: number,
): { weights: NamedTensors; dropped: string[]; kept: boolean } {
  const current = predictorNumClasses(weights, PREDICTOR);
  if (current === undefined || current === numClasses) return { weights, dropped: [], kept: current !== undefined };
  const out: NamedTensors = new Map();
  const dropped: string[] = [];
  for (const [key, tensor] of weights) {
    if (key.startsWith(PREDICTOR)) dropped.push(key);
    else out.set(key, tensor);
  }
  return { weights: out, dropped, kept: false };
}

export interface ImportOptions {
  /** A backbone name (resnet50_fpn…) or a torchvision detector name (fasterrcnn_resnet50_fpn). */
  arch: string;
  /** Foreground classes (torchvision's num_classes less the background); another count re-initializes the predictor. */
  numClasses?: number;
  /** Class names without the background (implies numClasses = their count). */
  classes?: string[];
  out: string;
  preprocessing?: Preprocessing;
  /** Where the file came from (e.g. its download URL), for the card; known files' URL by default. */
  url?: string;
}

export interface ImportSummary {
  out: string;
  backbone: string;
  layout: CheckpointLayout;
  tensors: number;
  dropped: string[];
  classes: string[];
  uninitialized: string[];
}

/** Reads a torchvision checkpoint and writes it as a model directory (see model-dir.ts). */
export async function importCheckpoint(file: string, options: ImportOptions): Promise<ImportSummary> {
  const backbone = backboneForArch(options.arch);
  // A published torchvision file (known by its name to a registry entry) brings its URL and preprocessing.
  const known = weightsForFile(file);
  const source = await readCheckpoint(file);
  const converted = convertCheckpoint(source, backbone, file);
  const coco = COCO_CLASSES.length - 1;
  let classes: string[];
  if (options.classes) {
    if (options.numClasses !== undefined && options.numClasses !== options.classes.length) {
      throw new FedcxrError(
        'usage',
        `--num-classes ${options.numClasses} disagrees with ${options.classes.length} class names`,
      );
    }
    classes = ['__background__', ...options.classes];
  } else if (options.numClasses !== undefined) {
    if (!Number.isInteger(options.numClasses) || options.numClasses < 1) {
      throw new FedcxrError(
        'usage',
        `--num-classes counts the foreground classes (not the background): an integer ≥ 1, got ${options.numClasses}`,
      );
    }
    classes =
      options.numClasses === coco && converted.numClasses === coco
        ? [...COCO_CLASSES]
        : classNamesFor(options.numClasses);
  } else if (converted.numClasses === coco) {
    classes = [...COCO_CLASSES];
  } else if (converted.numClasses !== undefined) {
    classes = classNamesFor(converted.numClasses);
  } else {
    throw new FedcxrError(
      'usage',
      'this checkpoint has no detector head: give --num-classes N (foreground classes) or --classes',
      {
        file,
      },
    );
  }
  const { weights, dropped } = dropBoxPredictor(converted.weights, classes.length - 1);
  const uninitialized =
    converted.layout === 'imagenet'
      ? ['backbone.fpn.', 'rpn.', 'roi_heads.']
      : dropped.length > 0 || converted.numClasses === undefined
        ? ['roi_heads.box_predictor.']
        : [];
  await saveModelDir(
    options.out,
    {
      architecture: 'faster_rcnn',
      backbone,
      classes,
      preprocessing: options.preprocessing ?? known?.preprocessing ?? TORCHVISION_PREPROCESSING,
      provenance: {
        createdAt: new Date().toISOString(),
        createdBy: 'fedcxr weights import',
        source: {
          kind: 'torchvision-checkpoint',
          file: basename(file),
          sha256: await sha256File(file),
          layout: converted.layout,
          url: options.url ?? known?.url,
        },
        // num_batches_tracked is bookkeeping (FrozenBatchNorm2d has none): not worth listing.
        dropped: [...converted.dropped, ...dropped].filter((key) => !key.endsWith('.num_batches_tracked')),
      },
      weights: { uninitialized },
    },
    weights,
  );
  return {
    out: options.out,
    backbone,
    layout: converted.layout,
    tensors: weights.size,
    dropped: [...converted.dropped, ...dropped],
    classes,
    uninitialized,
  };
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
