/**
 * COCO evaluation speed: our evaluateCoco against pycocotools' COCOeval on the same synthetic 2,000-image
 * case, in the same run. Run: `npm run bench:eval` (uses $FEDCXR_PYTHON, else the reference venv, else
 * python3; any of them needs pycocotools). Prints both times, the ratio and the largest stats difference.
 *
 * Options: --images N (default 2000), --runs N (our timed repetitions, default 5; we report the median).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../packages/base/src/rng.js';
import type { CocoAnnotation, CocoDataset, CocoResult } from '../../packages/core/src/coco.js';
import { evaluateCoco } from '../../packages/core/src/eval/index.js';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

/** core's seeded Rng (the same mulberry32 stream as before) so every run evaluates the same boxes. */
function prng(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/** 8 finding classes, ~3 boxes per image (some crowd, ~30% normal images), ~30 detections per image. */
export function syntheticCase(numImages: number, seed = 7): { gt: CocoDataset; dt: CocoResult[] } {
  const random = prng(seed);
  const round1 = (v: number) => Math.round(v * 10) / 10;
  const categories = Array.from({ length: 8 }, (_, k) => ({ id: k + 1, name: `finding_${k + 1}` }));
  const images = Array.from({ length: numImages }, (_, i) => ({
    id: i + 1,
    file_name: `${i + 1}.png`,
    width: 1024,
    height: 1024,
  }));
  const annotations: CocoAnnotation[] = [];
  const dt: CocoResult[] = [];
  const randomBox = (): [number, number, number, number] => {
    const w = Math.exp(Math.log(8) + random() * (Math.log(400) - Math.log(8)));
    const h = w * Math.exp(random() - 0.5);
    return [round1(random() * 600), round1(random() * 600), round1(w), round1(h)];
  };
  for (const image of images) {
    const count = random() < 0.3 ? 0 : 1 + Math.floor(random() * 5);
    for (let n = 0; n < count; n++) {
      const category = 1 + Math.floor(random() * 8);
      const bbox = randomBox();
      annotations.push({
        id: annotations.length + 1,
        image_id: image.id,
        category_id: category,
        bbox,
        area: round1(bbox[2] * bbox[3] * (0.5 + random() / 2)),
        iscrowd: random() < 0.03 ? 1 : 0,
      });
      const hits = Math.floor(random() * 4);
      for (let h = 0; h < hits; h++) {
        const jitter = () => (random() - 0.5) * 0.3;
        dt.push({
          image_id: image.id,
          category_id: random() < 0.9 ? category : 1 + Math.floor(random() * 8),
          bbox: [
            round1(bbox[0] + jitter() * bbox[2]),
            round1(bbox[1] + jitter() * bbox[3]),
            round1(bbox[2] * (1 + jitter())),
            round1(bbox[3] * (1 + jitter())),
          ],
          score: Math.round(random() * 1000) / 1000,
        });
      }
    }
    const falsePositives = 15 + Math.floor(random() * 20);
    for (let n = 0; n < falsePositives; n++) {
      dt.push({
        image_id: image.id,
        category_id: 1 + Math.floor(random() * 8),
        bbox: randomBox(),
        score: Math.round(random() * 1000) / 1000,
      });
    }
  }
  return { gt: { images, annotations, categories }, dt };
}

function findPython(): string {
  if (process.env.FEDCXR_PYTHON) return process.env.FEDCXR_PYTHON;
  const venv = process.env.REFERENCE_VENV ?? join(process.env.TMPDIR ?? '/tmp', 'fedcxr-reference-venv');
  const candidate = join(venv, 'bin', 'python');
  return existsSync(candidate) ? candidate : 'python3';
}

function main(): void {
  const numImages = option('images', 2000);
  const runs = option('runs', 5);
  const { gt, dt } = syntheticCase(numImages);
  console.log(
    `case: ${gt.images.length} images, ${gt.annotations.length} ground-truth boxes, ${dt.length} detections, ${gt.categories.length} categories`,
  );

  const dir = mkdtempSync(join(tmpdir(), 'fedcxr-bench-eval-'));
  try {
    const gtFile = join(dir, 'gt.json');
    const dtFile = join(dir, 'dt.json');
    writeFileSync(gtFile, JSON.stringify(gt));
    writeFileSync(dtFile, JSON.stringify(dt));

    // Ours: the first run (cold JIT) and the median of `runs` more, each from the parsed objects.
    let started = performance.now();
    let ours = evaluateCoco(gt, dt);
    const coldSeconds = (performance.now() - started) / 1000;
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      started = performance.now();
      ours = evaluateCoco(gt, dt);
      times.push((performance.now() - started) / 1000);
    }
    times.sort((a, b) => a - b);
    const oursSeconds = times[Math.floor(times.length / 2)];

    const python = findPython();
    const script = fileURLToPath(new URL('./pycocotools_time.py', import.meta.url));
    let reference: { total_s: number; evaluate_s: number; accumulate_s: number; stats: number[] };
    try {
      const out = execFileSync(python, [script, gtFile, dtFile], { encoding: 'utf8', maxBuffer: 1 << 24 });
      reference = JSON.parse(out.trim().split('\n').pop() ?? '');
    } catch (error) {
      console.error(`cannot run pycocotools with ${python} (set FEDCXR_PYTHON): ${(error as Error).message}`);
      process.exitCode = 1;
      return;
    }
    const maxDiff = Math.max(...ours.stats.map((s, i) => Math.abs(s - reference.stats[i])));
    console.log(
      `pycocotools COCOeval: ${reference.total_s.toFixed(3)} s (evaluate ${reference.evaluate_s.toFixed(3)} s, accumulate ${reference.accumulate_s.toFixed(3)} s)`,
    );
    console.log(
      `fedcxr evaluateCoco:  ${oursSeconds.toFixed(3)} s (median of ${runs}; first run ${coldSeconds.toFixed(3)} s)`,
    );
    console.log(
      `ratio: ${(reference.total_s / oursSeconds).toFixed(1)}x faster (first run: ${(reference.total_s / coldSeconds).toFixed(1)}x)`,
    );
    console.log(`stats: ${ours.stats.map((s) => s.toFixed(4)).join(' ')}`);
    console.log(`max |stats difference| vs pycocotools: ${maxDiff}`);
    if (maxDiff !== 0) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
