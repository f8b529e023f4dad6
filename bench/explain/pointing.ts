/**
 * Do the heat maps point at the finding? On a `cxr demo` output, every validation image with a finding is
 * explained (its detection 0) by each method, and each map is scored against the phantom's lesion mask:
 *
 * - pointing game (Zhang et al. 2016): is the map's hottest pixel on the mask?
 * - energy on the mask: the share of the map's heat on mask pixels, beside the share of the image the mask covers
 *   (a map that ignores the image scores its area share).
 *
 *   npm run bench:explain -- [--demo runs/demo] [--methods occlusion,eigencam,ablationcam] [--json out.json]
 *
 * A quality measurement, not a speed one; it still runs one method at a time on the CPU.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readGreyRaster } from '@fedcxr/base';
import { type CamMethod, explainDetections } from '@fedcxr/models-frcnn';
import { prepareInput } from '../../packages/cli/src/inference/input.js';
import { openInferenceModel } from '../../packages/cli/src/inference/model.js';

const { values } = parseArgs({
  options: {
    demo: { type: 'string', default: 'runs/demo' },
    methods: { type: 'string', default: 'occlusion,eigencam,ablationcam' },
    ratio: { type: 'string', default: '0.05' },
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
      });
      const seconds = (performance.now() - t0) / 1000;
      let total = 0;
      let onMask = 0;
      let peak = 0;
      result.cam.forEach((v, i) => {
        total += v;
        if (mask[i]) onMask += v;
        if (v > result.cam[peak]) peak = i;
      });
      rows[method] = [
        ...(rows[method] ?? []),
        { pointing: mask[peak], energy: total > 0 ? onMask / total : 0, area, seconds },
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
console.log('method        pointing   heat on mask   mask area   s/image');
for (const s of summary) {
  console.log(
    `${s.method.padEnd(13)} ${`${s.pointingHits} / ${s.images}`.padEnd(10)} ${(100 * s.energyOnMask).toFixed(1).padStart(9)} %  ${(100 * s.maskArea).toFixed(1).padStart(8)} %  ${s.secondsPerImage.toFixed(1).padStart(7)}`,
  );
}
if (values.json) writeFileSync(values.json as string, `${JSON.stringify({ demo: root, summary }, null, 2)}\n`);
