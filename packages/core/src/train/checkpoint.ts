/**
 * Checkpoints of a training run, under `<runDir>/checkpoints/`:
 *
 *   <tag>/weights.safetensors    every detector weight (torchvision names)
 *   <tag>/model.json             the model card (architecture, classes, preprocessing, recipe, metrics)
 *   <tag>/optimizer.safetensors  momentum buffers
 *   <tag>/state.json             where training stands: epoch, step, sampler position, history, best, config
 *   last.json, best.json         pointers {"tag": "<tag>"}
 *
 * A snapshot directory is fully written (each file atomically) before a pointer names it, and a pointer
 * is replaced atomically (write temp + rename), so a kill at any moment leaves `last` and `best` naming
 * complete snapshots. Snapshots no pointer names are deleted afterwards. `<runDir>/best` and
 * `<runDir>/last` are convenience symlinks to the same directories (a model directory each).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FedcxrError, writeFileAtomic, writeJsonAtomic } from '@fedcxr/base';
import type { ModelCard } from '../model-dir.js';
import { encodeSafetensors, readSafetensors, writeSafetensors } from '../safetensors.js';
import type { NamedTensors } from '../tensors.js';
import type { NormalizationPreset } from './config.js';

export type CheckpointKind = 'last' | 'best';

/**
 * A checkpoint's card: the model-directory card (model-dir.ts) with the fields training always fills, so a
 * checkpoint directory loads as a model directory.
 */
export type CheckpointCard = ModelCard & {
  categoryIds: number[];
  preprocessing: ModelCard['preprocessing'] & {
    normalization: NormalizationPreset;
    dicom: { preset: NormalizationPreset; size: number | null; letterbox: boolean };
  };
  options: Record<string, unknown>;
  recipe: Record<string, unknown>;
  metrics: Record<string, number>;
};

export interface Snapshot<State> {
  weights: NamedTensors;
  optimizerSlots: NamedTensors;
  /** The card without its `weights` block (filled in from the bytes written). */
  card: Omit<CheckpointCard, 'weights'>;
  state: State;
}

export async function writeSnapshot<State>(runDir: string, tag: string, snapshot: Snapshot<State>): Promise<string> {
  const dir = join(runDir, 'checkpoints', tag);
  const bytes = encodeSafetensors(snapshot.weights, { format: 'pt', producer: 'fedcxr' });
  await writeFileAtomic(join(dir, 'weights.safetensors'), bytes);
  await writeSafetensors(join(dir, 'optimizer.safetensors'), snapshot.optimizerSlots);
  const card: CheckpointCard = {
    ...snapshot.card,
    weights: {
      file: 'weights.safetensors',
      sha256: createHash('sha256').update(bytes).digest('hex'),
      tensors: snapshot.weights.size,
      uninitialized: [],
    },
  };
  await writeJsonAtomic(join(dir, 'model.json'), card);
  // state.json last: a snapshot without it is incomplete and never named by a pointer.
  await writeJsonAtomic(join(dir, 'state.json'), snapshot.state);
  return dir;
}

/** Points `kind` at snapshot `tag` (atomically), refreshes the convenience symlink, prunes unnamed snapshots. */
export async function pointCheckpoint(runDir: string, kind: CheckpointKind, tag: string): Promise<void> {
  await writeJsonAtomic(join(runDir, 'checkpoints', `${kind}.json`), { tag });
  try {
    const tmp = join(runDir, `.${kind}.link.tmp`);
    await rm(tmp, { force: true });
    await symlink(join('checkpoints', tag), tmp);
    await rename(tmp, join(runDir, kind));
  } catch {
    // Symlinks are a convenience (some filesystems refuse them); the pointer file is what counts.
  }
}

export async function pruneSnapshots(runDir: string): Promise<void> {
  const keep = new Set<string>();
  for (const kind of ['last', 'best'] as const) {
    const tag = await readPointer(runDir, kind);
    if (tag) keep.add(tag);
  }
  const dir = join(runDir, 'checkpoints');
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && !keep.has(entry.name)) await rm(join(dir, entry.name), { recursive: true, force: true });
  }
}

export async function readPointer(runDir: string, kind: CheckpointKind): Promise<string | undefined> {
  const file = join(runDir, 'checkpoints', `${kind}.json`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const { tag } = JSON.parse(text) as { tag?: unknown };
    if (typeof tag !== 'string' || tag.includes('/') || tag.includes('..')) throw new Error('no valid "tag"');
    return tag;
  } catch (error) {
    throw new FedcxrError('bad_checkpoint', `corrupt checkpoint pointer: ${(error as Error).message}`, { file });
  }
}

export async function readSnapshot<State>(
  runDir: string,
  kind: CheckpointKind,
): Promise<(Snapshot<State> & { dir: string }) | undefined> {
  const tag = await readPointer(runDir, kind);
  if (!tag) return undefined;
  const dir = join(runDir, 'checkpoints', tag);
  const weights = (await readSafetensors(join(dir, 'weights.safetensors'))).tensors;
  const optimizerSlots = (await readSafetensors(join(dir, 'optimizer.safetensors'))).tensors;
  const card = await readJson<CheckpointCard>(join(dir, 'model.json'));
  const state = await readJson<State>(join(dir, 'state.json'));
  return { weights, optimizerSlots, card, state, dir };
}

export async function readJson<T>(file: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FedcxrError('bad_checkpoint', `cannot read: ${(error as Error).message}`, { file });
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new FedcxrError('bad_checkpoint', `not valid JSON: ${(error as Error).message}`, { file });
  }
}

/** Rewrites the JSONL log from records (used on resume, so the log matches the checkpoint exactly). */
export async function writeJsonl(file: string, records: readonly unknown[]): Promise<void> {
  await writeFileAtomic(file, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
}
