/**
 * `cxr eval --model <dir|file.onnx> --data <coco.json>`: predicts every image of a COCO data set (the files
 * its `file_name`s point at) and returns COCO results keyed by the data set's own image and category ids.
 */
import { isAbsolute, join } from 'node:path';
import type { CocoDataset, CocoResult, Detection, DetectorImage } from '@fedcxr/core';
import { type InputPreparation, prepareInput } from './input.js';

/** What predicting a data set needs of a model, on ONNX Runtime or on the tfjs engine. */
export interface DatasetPredictor {
  model: { predict(images: DetectorImage[]): Promise<Detection[][]> };
  preparation: InputPreparation;
  classes: readonly string[];
  /** COCO category id of each class index (index 0, background, unused). */
  categoryIds: number[];
}

/** The data set's category id for each of the model's class indices (by name, else the card's ids). */
export function categoryIdsFor(opened: DatasetPredictor, data: CocoDataset): number[] {
  return opened.classes.map((name, label) => {
    if (label === 0) return 0;
    return data.categories.find((c) => c.name === name)?.id ?? opened.categoryIds[label] ?? label;
  });
}

export async function predictCocoDataset(
  opened: DatasetPredictor,
  data: CocoDataset,
  imageDir: string,
  onImage?: (done: number) => void,
): Promise<CocoResult[]> {
  const ids = categoryIdsFor(opened, data);
  const results: CocoResult[] = [];
  for (const [index, image] of data.images.entries()) {
    const file = isAbsolute(image.file_name) ? image.file_name : join(imageDir, image.file_name);
    const input = await prepareInput(file, opened.preparation);
    const [detections] = await opened.model.predict([input.image]);
    for (const d of detections) {
      const [x1, y1, x2, y2] = input.toOriginal(d.box);
      results.push({ image_id: image.id, category_id: ids[d.label], bbox: [x1, y1, x2 - x1, y2 - y1], score: d.score });
    }
    onImage?.(index + 1);
  }
  return results;
}
