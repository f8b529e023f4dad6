/**
 * For tests: the ResNet-18-FPN torchvision checkpoint behind tools/reference/fixtures/onnx/resnet18_fpn.json.
 * It is ~110 MB, so it is generated into `.cache/reference/` by tools/reference/onnx_make_fixtures.py (torch
 * seeds make it identical to the one the fixture was recorded from) instead of being committed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, saveModelDir, TORCHVISION_PREPROCESSING } from '@fedcxr/core';

export const repoRoot = new URL('../../../../', import.meta.url).pathname;

export interface OnnxFixture {
  checkpoint: string;
  images_f32_base64: string[];
  image_shapes: [number, number, 3][];
  detections: { boxes: number[][]; labels: number[]; scores: number[] }[];
  /** The first image as 8-bit grey (what a PNG carries) and torchvision's detections on it. */
  grey_u8_base64: string;
  grey_detections: { boxes: number[][]; labels: number[]; scores: number[] };
}

export function readOnnxFixture(): OnnxFixture {
  return JSON.parse(readFileSync(join(repoRoot, 'tools/reference/fixtures/onnx/resnet18_fpn.json'), 'utf8'));
}

/** The checkpoint's path, generating it when a Python reference environment exists; null otherwise. */
export function referenceCheckpoint(): string | null {
  const cache = join(repoRoot, '.cache/reference');
  const file = join(cache, readOnnxFixture().checkpoint);
  if (existsSync(file)) return file;
  const venv = process.env.REFERENCE_VENV ?? '/tmp/fedcxr-reference-venv';
  if (!existsSync(join(venv, 'bin', 'python'))) return null;
  const started = Date.now();
  execFileSync(
    join(venv, 'bin', 'python'),
    [join(repoRoot, 'tools/reference/onnx_make_fixtures.py'), cache, '--checkpoint-only'],
    {
      stdio: 'ignore',
    },
  );
  process.stderr.write(`generated ${file} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return file;
}

export const SKIP_REASON = 'no reference checkpoint and no Python reference environment to generate it';

/** Writes the checkpoint as a model directory (faster_rcnn, resnet18_fpn, 2 classes, min 64 / max 96). */
export async function saveReferenceModelDir(dir: string, checkpoint: string): Promise<void> {
  const { tensors } = await readSafetensors(checkpoint);
  await saveModelDir(
    dir,
    {
      architecture: 'faster_rcnn',
      backbone: 'resnet18_fpn',
      classes: ['__background__', 'a', 'b'],
      preprocessing: { ...TORCHVISION_PREPROCESSING, minSize: 64, maxSize: 96 },
      provenance: { createdAt: '2026-11-26T00:00:00Z', createdBy: 'test' },
    },
    tensors,
  );
}
