/**
 * Tabular site data derived from a COCO file, for the small model while the detector trainer lands:
 * each image becomes a 8×8 grid of mean intensities (64 features, 0..1) and the label "has at least one
 * box" (0 = no finding, 1 = finding). Rows keep the image's patient id, so shards stay patient-disjoint.
 * Images are read from `file_name` relative to the COCO file's directory (as `cxr dataset import` writes).
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { type CocoDataset, FedcxrError, readGreyRaster } from '@fedcxr/core';
import type { LabelledRows } from './data.js';

export const COCO_GRID = 8;

export async function readCoco(path: string): Promise<CocoDataset> {
  let coco: CocoDataset;
  try {
    coco = JSON.parse(await readFile(path, 'utf8')) as CocoDataset;
  } catch (error) {
    throw new FedcxrError('coco_unreadable', `cannot read COCO file: ${(error as Error).message}`, { file: path });
  }
  if (!Array.isArray(coco.images) || !Array.isArray(coco.annotations))
    throw new FedcxrError('coco_invalid', 'not a COCO detection file (images/annotations missing)', { file: path });
  return coco;
}

export async function rowsFromCoco(
  cocoPath: string,
  onImage?: (done: number, total: number) => void,
): Promise<LabelledRows> {
  const coco = await readCoco(cocoPath);
  const positive = new Set(coco.annotations.map((a) => a.image_id));
  const features = COCO_GRID * COCO_GRID;
  const x = new Float32Array(coco.images.length * features);
  const y = new Int32Array(coco.images.length);
  const patientIds: string[] = [];
  const base = dirname(cocoPath);
  for (let i = 0; i < coco.images.length; i++) {
    const image = coco.images[i];
    const file = isAbsolute(image.file_name) ? image.file_name : join(base, image.file_name);
    const raster = await readGreyRaster(file).catch((error: unknown) => {
      throw new FedcxrError('coco_image_unreadable', `image ${image.id}: ${(error as Error).message}`, {
        file: cocoPath,
      });
    });
    const max = raster.bitDepth === 16 ? 65535 : 255;
    const sums = new Float64Array(features);
    const counts = new Float64Array(features);
    for (let row = 0; row < raster.height; row++) {
      const gy = Math.min(COCO_GRID - 1, Math.floor((row * COCO_GRID) / raster.height));
      for (let col = 0; col < raster.width; col++) {
        const gx = Math.min(COCO_GRID - 1, Math.floor((col * COCO_GRID) / raster.width));
        sums[gy * COCO_GRID + gx] += raster.data[row * raster.width + col];
        counts[gy * COCO_GRID + gx]++;
      }
    }
    for (let f = 0; f < features; f++) x[i * features + f] = counts[f] > 0 ? sums[f] / counts[f] / max : 0;
    y[i] = positive.has(image.id) ? 1 : 0;
    patientIds.push(String(image.patient_id ?? `image-${image.id}`));
    onImage?.(i + 1, coco.images.length);
  }
  return { features, classes: 2, x, y, patientIds };
}
