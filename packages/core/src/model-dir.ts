/**
 * The model directory, the project's own format: `weights.safetensors` (torchvision keys and layouts, so
 * PyTorch reads it too) plus `model.json`, the model card (architecture, backbone, classes, preprocessing,
 * training recipe, metrics, provenance). Loading it needs nothing else. Both files are written atomically,
 * weights first; the card records the weights' SHA-256, so a directory caught between the two writes is
 * reported instead of loaded with the wrong card.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FedcxrError, writeFileAtomic, writeJsonAtomic } from '@fedcxr/base';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import type { NamedTensors } from './tensors.js';

export const MODEL_CARD_FILE = 'model.json';
export const MODEL_WEIGHTS_FILE = 'weights.safetensors';
export const MODEL_CARD_FORMAT = 'fedcxr-model';

export interface Preprocessing {
  /** Named preset (e.g. 'torchvision-imagenet'); the numbers below are what it means. */
  preset: string;
  /** torchvision's GeneralizedRCNNTransform sizes. */
  minSize: number;
  maxSize: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /** Grey X-rays are replicated to 3 channels before normalization. */
  inputChannels: 1 | 3;
  /** Training checkpoints: the intensity normalization of the training images (e.g. 'seed'). */
  normalization?: string;
  /** Training checkpoints: how source DICOMs became training images (the importer's settings). */
  dicom?: { preset: string; size: number | null; letterbox: boolean };
}

/** ImageNet's per-channel RGB mean and standard deviation (torchvision's normalization, inputs in [0, 1]). */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

export const TORCHVISION_PREPROCESSING: Preprocessing = {
  preset: 'torchvision-imagenet',
  minSize: 800,
  maxSize: 1333,
  imageMean: [...IMAGENET_MEAN],
  imageStd: [...IMAGENET_STD],
  inputChannels: 3,
};

export interface ModelProvenance {
  createdAt: string;
  createdBy: string;
  /** Where the weights came from (an imported checkpoint, a training run, a federated round…). */
  source?: {
    kind: string;
    file?: string;
    sha256?: string;
    layout?: string;
    url?: string;
    /** Training checkpoints: the run, epoch and optimizer step. */
    run?: string;
    epoch?: number;
    step?: number;
  };
  /** Checkpoint keys that were not carried over (classifier heads, a predictor of another class count). */
  dropped?: string[];
  parent?: string;
  notes?: string;
}

export interface ModelCard {
  format: typeof MODEL_CARD_FORMAT;
  version: 1;
  /** Detector architecture (the `detectors` registry name), e.g. 'faster_rcnn'. */
  architecture: string;
  /** Backbone registry name, e.g. 'resnet50_fpn'. */
  backbone: string;
  /** Class names, index 0 = '__background__' (torchvision's convention). */
  classes: string[];
  /** Training checkpoints: the COCO category id of each of classes[1..]. */
  categoryIds?: number[];
  preprocessing: Preprocessing;
  /** Detector settings beyond the defaults (passed back to the detector factory when loading). */
  options?: Record<string, unknown>;
  recipe?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  provenance: ModelProvenance;
  weights: {
    file: typeof MODEL_WEIGHTS_FILE;
    sha256: string;
    tensors: number;
    /** Prefixes the detector must initialize itself (e.g. an ImageNet import has no rpn./roi_heads.). */
    uninitialized: string[];
  };
}

export interface ModelDir {
  card: ModelCard;
  weights: NamedTensors;
}

/** Card fields the caller provides; format, version and the weights block are filled in. */
export type ModelCardInput = Omit<ModelCard, 'format' | 'version' | 'weights'> & {
  weights?: { uninitialized?: string[] };
};

export async function saveModelDir(dir: string, input: ModelCardInput, weights: NamedTensors): Promise<ModelCard> {
  const bytes = encodeSafetensors(weights, { format: 'pt', producer: 'fedcxr' });
  const card: ModelCard = {
    ...input,
    format: MODEL_CARD_FORMAT,
    version: 1,
    weights: {
      file: MODEL_WEIGHTS_FILE,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      tensors: weights.size,
      uninitialized: input.weights?.uninitialized ?? [],
    },
  };
  validateCard(card, join(dir, MODEL_CARD_FILE));
  await writeFileAtomic(join(dir, MODEL_WEIGHTS_FILE), bytes);
  await writeJsonAtomic(join(dir, MODEL_CARD_FILE), card);
  return card;
}

export async function loadModelDir(dir: string): Promise<ModelDir> {
  const cardFile = join(dir, MODEL_CARD_FILE);
  const card = await readModelCard(dir);
  const weightsFile = join(dir, card.weights.file);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(weightsFile);
  } catch (error) {
    throw new FedcxrError('model_dir', `cannot read the weights: ${(error as Error).message}`, { file: weightsFile });
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== card.weights.sha256) {
    throw new FedcxrError(
      'model_dir',
      `weights do not match ${MODEL_CARD_FILE} (SHA-256 ${sha256.slice(0, 12)}…, card says ${card.weights.sha256.slice(0, 12)}…): the directory was changed or half-written`,
      { file: weightsFile },
    );
  }
  const { tensors } = decodeSafetensors(bytes, weightsFile);
  if (tensors.size !== card.weights.tensors) {
    throw new FedcxrError('model_dir', `holds ${tensors.size} tensors, ${cardFile} says ${card.weights.tensors}`, {
      file: weightsFile,
    });
  }
  return { card, weights: tensors };
}

/** Reads and validates model.json only (cheap: for listings and `cxr predict` setup). */
export async function readModelCard(dir: string): Promise<ModelCard> {
  const file = join(dir, MODEL_CARD_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new FedcxrError(
      'model_dir',
      missing ? 'not a model directory (no model.json)' : `cannot read: ${(error as Error).message}`,
      { file },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new FedcxrError('model_dir', `not valid JSON: ${(error as Error).message}`, { file });
  }
  return validateCard(value, file);
}

/** Checks a model card's shape; errors name the field. */
export function validateCard(value: unknown, file = MODEL_CARD_FILE): ModelCard {
  const fail = (field: string, problem: string) => new FedcxrError('model_dir', `${field}: ${problem}`, { file });
  if (typeof value !== 'object' || value === null) throw fail('(root)', 'expected an object');
  const card = value as Record<string, unknown>;
  if (card.format !== MODEL_CARD_FORMAT) throw fail('format', `expected "${MODEL_CARD_FORMAT}"`);
  if (card.version !== 1) throw fail('version', `unsupported version ${JSON.stringify(card.version)}`);
  for (const field of ['architecture', 'backbone'] as const) {
    if (typeof card[field] !== 'string' || card[field] === '') throw fail(field, 'expected a non-empty string');
  }
  const classes = card.classes;
  if (!Array.isArray(classes) || classes.length < 2 || !classes.every((c) => typeof c === 'string')) {
    throw fail('classes', 'expected class names, "__background__" first, at least one class');
  }
  if (classes[0] !== '__background__') throw fail('classes[0]', 'must be "__background__"');
  const pre = card.preprocessing as Record<string, unknown> | undefined;
  if (typeof pre !== 'object' || pre === null) throw fail('preprocessing', 'expected an object');
  if (typeof pre.preset !== 'string') throw fail('preprocessing.preset', 'expected a string');
  for (const field of ['minSize', 'maxSize'] as const) {
    if (typeof pre[field] !== 'number' || !(Number(pre[field]) > 0))
      throw fail(`preprocessing.${field}`, 'expected a positive number');
  }
  for (const field of ['imageMean', 'imageStd'] as const) {
    const v = pre[field];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number')) {
      throw fail(`preprocessing.${field}`, 'expected 3 numbers');
    }
  }
  if (pre.inputChannels !== 1 && pre.inputChannels !== 3) throw fail('preprocessing.inputChannels', 'expected 1 or 3');
  const provenance = card.provenance as Record<string, unknown> | undefined;
  if (typeof provenance !== 'object' || provenance === null || typeof provenance.createdAt !== 'string') {
    throw fail('provenance.createdAt', 'expected a timestamp string');
  }
  const weights = card.weights as Record<string, unknown> | undefined;
  if (typeof weights !== 'object' || weights === null) throw fail('weights', 'expected an object');
  if (weights.file !== MODEL_WEIGHTS_FILE) throw fail('weights.file', `expected "${MODEL_WEIGHTS_FILE}"`);
  if (typeof weights.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(weights.sha256)) {
    throw fail('weights.sha256', 'expected a hex SHA-256');
  }
  if (!Number.isInteger(weights.tensors)) throw fail('weights.tensors', 'expected an integer');
  if (!Array.isArray(weights.uninitialized)) throw fail('weights.uninitialized', 'expected a list of key prefixes');
  for (const field of ['recipe', 'metrics'] as const) {
    if (card[field] !== undefined && (typeof card[field] !== 'object' || card[field] === null)) {
      throw fail(field, 'expected an object');
    }
  }
  return value as ModelCard;
}
