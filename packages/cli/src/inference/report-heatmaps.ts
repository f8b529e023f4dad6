/**
 * EigenCAM heat maps of the best checkpoint on a few validation images, for the training report's heat-map
 * section (the report itself lives in core, which knows nothing of detectors' internals or ONNX Runtime).
 */
import { isAbsolute, join } from 'node:path';
import { type CocoDataset, drawBoxes, encodeRgbPng, heatmapOverlay, type ReportImage } from '@fedcxr/core';
import { explainDetections, exportableDepth } from '@fedcxr/models-frcnn';
import { prepareInput } from './input.js';
import { openInferenceModel } from './model.js';

export async function reportHeatmaps(
  modelDir: string,
  data: CocoDataset,
  imageDir: string,
  count = 4,
): Promise<ReportImage[]> {
  const opened = await openInferenceModel(modelDir);
  const out: ReportImage[] = [];
  try {
    // Images with findings first: they are what a reader wants explained.
    const withBoxes = new Set(data.annotations.map((a) => a.image_id));
    const images = [...data.images].sort((a, b) => Number(withBoxes.has(b.id)) - Number(withBoxes.has(a.id)));
    for (const image of images) {
      if (out.length >= count) break;
      const file = isAbsolute(image.file_name) ? image.file_name : join(imageDir, image.file_name);
      const input = await prepareInput(file, opened.preparation);
      const result = await explainDetections(opened.model, input.image, { method: 'eigencam', detection: 0 }).catch(
        () => null,
      );
      if (!result) continue;
      const best = result.explained[0];
      const { width, height, pixels } = input.image;
      const overlay = drawBoxes(heatmapOverlay(pixels, result.cam, width, height, 0.45), [
        { box: best.box, text: `${opened.classes[best.label]} ${best.score.toFixed(2)}` },
      ]);
      out.push({
        title: image.file_name,
        src: `data:image/png;base64,${Buffer.from(encodeRgbPng(overlay)).toString('base64')}`,
        caption: `EigenCAM of the best detection: ${opened.classes[best.label]} (${best.score.toFixed(2)})`,
      });
    }
  } finally {
    await opened.model.dispose();
  }
  return out;
}

/** Whether the ONNX path (and so heat maps) supports this backbone. */
export function supportsHeatmaps(backbone: string): boolean {
  try {
    exportableDepth(backbone);
    return true;
  } catch {
    return false;
  }
}
