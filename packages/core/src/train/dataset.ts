/**
 * Training data as the loop sees it: a COCO dataset (what `cxr dataset import` writes) plus a way to load
 * each image's pixels. Categories, sorted by id, become the detector's 1-based labels; an image without
 * annotations is a negative (a "normal" study) and trains the background.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { FedcxrError, readGreyRaster } from '@fedcxr/base';
import type { CocoCategory, CocoDataset, CocoImage } from '../coco.js';
import type { DetectorImage, DetectorTarget } from '../model.js';

export interface DetectionDataset {
  readonly coco: CocoDataset;
  /** Foreground categories in label order: label k (1-based) is categories[k - 1]. */
  readonly categories: readonly CocoCategory[];
  readonly size: number;
  /** Pixels of image `index` (position in coco.images), values in [0, 1]. */
  loadImage(index: number): Promise<DetectorImage>;
  /** Boxes (x1, y1, x2, y2) and 1-based labels of image `index`; crowd boxes are left out. */
  target(index: number): DetectorTarget;
  /** Label of a COCO category id. */
  labelOf(categoryId: number): number;
}

/** Wraps a COCO dataset and an image loader; checks that annotations refer to known images and categories. */
export function datasetFromCoco(
  coco: CocoDataset,
  loadImage: (image: CocoImage, index: number) => Promise<DetectorImage>,
  options: { file?: string; categories?: readonly CocoCategory[]; limit?: number } = {},
): DetectionDataset {
  const file = options.file ?? 'annotations';
  if (!Array.isArray(coco.images) || !Array.isArray(coco.annotations) || !Array.isArray(coco.categories)) {
    throw new FedcxrError('bad_annotations', 'not a COCO dataset (needs images, annotations and categories arrays)', {
      file,
    });
  }
  const images = options.limit ? coco.images.slice(0, options.limit) : coco.images;
  const categories = options.categories ?? [...coco.categories].sort((a, b) => a.id - b.id);
  if (options.categories) {
    const own = [...coco.categories].sort((a, b) => a.id - b.id);
    const same =
      own.length === categories.length &&
      own.every((c, i) => c.id === categories[i].id && c.name === categories[i].name);
    if (!same) {
      throw new FedcxrError('bad_annotations', 'categories differ from the training set’s (ids and names must match)', {
        file,
      });
    }
  }
  const labels = new Map(categories.map((c, i) => [c.id, i + 1]));
  const indexOfImage = new Map(images.map((im, i) => [im.id, i]));
  const knownImages = new Set(coco.images.map((im) => im.id));
  const boxes: number[][] = images.map(() => []);
  const boxLabels: number[][] = images.map(() => []);
  for (const a of coco.annotations) {
    if (!knownImages.has(a.image_id)) {
      throw new FedcxrError('bad_annotations', `annotation ${a.id} refers to unknown image ${a.image_id}`, { file });
    }
    const label = labels.get(a.category_id);
    if (label === undefined) {
      throw new FedcxrError('bad_annotations', `annotation ${a.id} has unknown category ${a.category_id}`, { file });
    }
    const at = indexOfImage.get(a.image_id);
    if (at === undefined || a.iscrowd === 1) continue;
    const [x, y, w, h] = a.bbox;
    if (![x, y, w, h].every(Number.isFinite) || w <= 0 || h <= 0) {
      throw new FedcxrError('bad_annotations', `annotation ${a.id} has an invalid bbox [${a.bbox}]`, { file });
    }
    boxes[at].push(x, y, x + w, y + h);
    boxLabels[at].push(label);
  }
  return {
    coco: { ...coco, images, annotations: coco.annotations.filter((a) => indexOfImage.has(a.image_id)) },
    categories,
    size: images.length,
    loadImage: (index) => loadImage(images[index], index),
    target: (index) => ({ boxes: Float32Array.from(boxes[index]), labels: Int32Array.from(boxLabels[index]) }),
    labelOf: (categoryId) => {
      const label = labels.get(categoryId);
      if (label === undefined) throw new FedcxrError('usage', `unknown category id ${categoryId}`);
      return label;
    },
  };
}

/**
 * Opens a COCO annotations file whose images are PNG/JPEG files (8- or 16-bit grey) relative to `imageDir`
 * (default: the annotations file's folder).
 */
export async function openCocoDataset(
  annotationsPath: string,
  options: { imageDir?: string; limit?: number; categories?: readonly CocoCategory[] } = {},
): Promise<DetectionDataset> {
  let coco: CocoDataset;
  try {
    coco = JSON.parse(await readFile(annotationsPath, 'utf8')) as CocoDataset;
  } catch (error) {
    throw new FedcxrError('bad_annotations', `cannot read COCO annotations: ${(error as Error).message}`, {
      file: annotationsPath,
    });
  }
  const imageDir = resolve(options.imageDir ?? dirname(annotationsPath));
  return datasetFromCoco(
    coco,
    async (image) => {
      const path = isAbsolute(image.file_name) ? image.file_name : join(imageDir, image.file_name);
      const raster = await readGreyRaster(path);
      const scale = raster.bitDepth === 16 ? 65535 : 255;
      const pixels = new Float32Array(raster.data.length);
      for (let i = 0; i < pixels.length; i++) pixels[i] = raster.data[i] / scale;
      return { pixels, width: raster.width, height: raster.height, channels: 1 };
    },
    { file: annotationsPath, limit: options.limit, categories: options.categories },
  );
}
