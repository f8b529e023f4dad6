import { FedcxrError } from '@fedcxr/base';
import type { CocoResult } from '../coco.js';
import type { Detection } from '../model.js';

/**
 * Turns a detector's output (x1, y1, x2, y2 boxes, 1-based labels) into the COCO results list that
 * evaluateCoco and pycocotools read ([x, y, width, height]). `categoryIds[label]` maps a label to the
 * dataset's category id (index 0, background, is unused); by default the label is the category id.
 */
export function detectionsToCocoResults(
  imageIds: readonly number[],
  detections: readonly (readonly Detection[])[],
  categoryIds?: readonly number[],
): CocoResult[] {
  if (imageIds.length !== detections.length) {
    throw new FedcxrError(
      'usage',
      `detectionsToCocoResults: ${imageIds.length} image ids for ${detections.length} detection lists`,
    );
  }
  const results: CocoResult[] = [];
  detections.forEach((list, i) => {
    for (const { box, label, score } of list) {
      const category = categoryIds ? categoryIds[label] : label;
      if (category === undefined) {
        throw new FedcxrError('usage', `detection label ${label} has no category id (${categoryIds?.length} given)`);
      }
      const [x1, y1, x2, y2] = box;
      results.push({ image_id: imageIds[i], category_id: category, bbox: [x1, y1, x2 - x1, y2 - y1], score });
    }
  });
  return results;
}
