/**
 * Do the heat maps point at the finding? On a `cxr demo` output, every validation image with a finding is
 * explained (its detection 0) by each method, and each map is scored against the phantom's lesion mask:
 *
 * - pointing game (Zhang et al. 2016): is the map's hottest pixel on the mask?
 * - energy on the mask: the share of the map's heat on mask pixels, beside the share of the image the mask covers
 *   (a map that ignores the image scores its area share).
 * - both again for the map renormalized inside the explained box (`<method> in box`, scored on the box's pixels).
 *
 *   npm run bench:explain -- [--demo runs/demo] [--methods occlusion,eigencam,ablationcam] [--grid auto] [--json out.json]
 *
 * A quality measurement, not a speed one; it still runs one method at a time on the CPU.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readGreyRaster } from '@fedcxr/base';
import { type CamGrid, type CamMethod, explainDetections, renormalizeCamInBoxes } from '@fedcxr/models-frcnn';
import { prepareInput } from '../../packages/cli/src/inference/input.js';
import { openInferenceModel } from '../../packages/cli/src/inference/model.js';

const { values } = parseArgs({
  options: {
    demo: { type: 'string', default: 'runs/demo' },
    methods: { type: 'string', default: 'occlusion,eigencam,ablationcam' },
    ratio: { type: 'string', default: '0.05' },
    /** The CAM grid (explain --grid): auto, pool or an FPN level 0–3. */
    grid: { type: 'string', default: 'auto' },
    json: { type: 'string' },
  },
});
const root = values.demo as string;
const methods = (values.methods as string).split(',') as CamMethod[];
const onnx = join(root, 'model', 'detector.onnx');
if (!existsSync(onnx)) {
  console.error(`${onnx}: no exported demo model here; run \`npx cxr demo --out ${root}\` first`);
  process.exit(2);
}

interface CocoImage {
  id: number;
  file_name: string;
  source_path: string;
}
const val = JSON.parse(readFileSync(join(root, 'dataset', 'val.json'), 'utf8')) as {
  images: CocoImage[];
  annotations: { image_id: number }[];
};
const withFindings = val.images.filter((image) => val.annotations.some((a) => a.image_id === image.id));

/** The phantom's mask of a source DICOM (train/<class>/mark/<name>.png or .jpg), sampled at the model's size. */
async function maskAt(image: CocoImage, width: number, height: number): Promise<Uint8Array> {
  const base = join(root, 'export', image.source_path.replace('/image/', '/mark/').replace(/\.dcm$/, ''));
  const mark = await readGreyRaster(existsSync(`${base}.png`) ? `${base}.png` : `${base}.jpg`);
  const mask = new Uint8Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const sx = Math.floor(((x + 0.5) * mark.width) / width);
      const sy = Math.floor(((y + 0.5) * mark.height) / height);
      mask[y * width + x] = mark.data[sy * mark.width + sx] > 127 ? 1 : 0;
    }
  return mask;
}

/** Pointing game and share of heat on the mask, over the given pixels of a map. */
function scoreOnMask(cam: Float32Array, mask: Uint8Array, pixels: number[]): { pointing: number; energy: number } {
  let total = 0;
  let onMask = 0;
  let peak = pixels[0];
  for (const i of pixels) {
    total += cam[i];
    if (mask[i]) onMask += cam[i];
    if (cam[i] > cam[peak]) peak = i;
  }
  return { pointing: mask[peak], energy: total > 0 ? onMask / total : 0 };
}

function allPixels(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

/** Row-major indices of the pixels a box [x1, y1, x2, y2] covers (as renormalizeCamInBoxes truncates it). */
function pixelsInBox(box: readonly number[], width: number, height: number): number[] {
  const [x1, y1, x2, y2] = box.map((v) => Math.trunc(v));
  const out: number[] = [];
  for (let y = Math.max(0, y1); y < Math.min(height, y2); y++)
    for (let x = Math.max(0, x1); x < Math.min(width, x2); x++) out.push(y * width + x);
  return out;
}

const { model, preparation } = await openInferenceModel(onnx);
const rows: Record<string, { pointing: number; energy: number; area: number; seconds: number }[]> = {};
try {
  for (const image of withFindings) {
    const input = await prepareInput(join(root, 'export', image.source_path), preparation);
    const { width, height } = input.image;
    const mask = await maskAt(image, width, height);
    const area = mask.reduce((s, v) => s + v, 0) / mask.length;
    for (const method of methods) {
      const t0 = performance.now();
      const result = await explainDetections(model, input.image, {
        method,
        detection: 0,
        ratioChannelsToAblate: Number(values.ratio),
        grid: values.grid as CamGrid,
      });
      const seconds = (performance.now() - t0) / 1000;
      const whole = scoreOnMask(result.cam, mask, allPixels(mask.length));
      rows[method] = [...(rows[method] ?? []), { ...whole, area, seconds }];
      // The view pytorch-grad-cam recommends for detectors: the map renormalized inside the explained box,
      // scored on the box's pixels only (a map that ignores the image scores the mask's share of the box).
      const box = result.explained[0].box;
      const inBox = renormalizeCamInBoxes(result.cam, width, height, [box]);
      const boxPixels = pixelsInBox(box, width, height);
      const boxArea = boxPixels.reduce((s, i) => s + mask[i], 0) / Math.max(1, boxPixels.length);
      rows[`${method} in box`] = [
        ...(rows[`${method} in box`] ?? []),
        { ...scoreOnMask(inBox, mask, boxPixels), area: boxArea, seconds },
      ];
    }
  }
} finally {
  await model.dispose();
}

const summary = Object.entries(rows).map(([method, list]) => {
  const mean = (key: 'energy' | 'area' | 'seconds') => list.reduce((s, r) => s + r[key], 0) / list.length;
  return {
    method,
    images: list.length,
    pointingHits: list.reduce((s, r) => s + r.pointing, 0),
    energyOnMask: mean('energy'),
    maskArea: mean('area'),
    secondsPerImage: mean('seconds'),
  };
});
console.log(`heat maps of ${withFindings.length} validation images with a finding (${root}):`);
console.log('method                 pointing   heat on mask   mask area   s/image');
for (const s of summary) {
  console.log(
    `${s.method.padEnd(22)} ${`${s.pointingHits} / ${s.images}`.padEnd(10)} ${(100 * s.energyOnMask).toFixed(1).padStart(9)} %  ${(100 * s.maskArea).toFixed(1).padStart(8)} %  ${s.secondsPerImage.toFixed(1).padStart(7)}`,
  );
}
if (values.json) writeFileSync(values.json as string, `${JSON.stringify({ demo: root, summary }, null, 2)}\n`);
