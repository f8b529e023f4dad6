/**
 * Prediction latency at 512 px, Faster R-CNN ResNet-50-FPN (torchvision's fasterrcnn_resnet50_fpn
 * architecture, 8 classes, min_size = max_size = 512): our ONNX export on onnxruntime-node (`OnnxFasterRcnn`,
 * default CPU provider, and with intraOpThreads = --threads) against torchvision on the CPU
 * (torch.set_num_threads(--threads), eval, inference_mode), in the same run, on the same random weights and
 * the same images. Prints the median ms/image of each engine, the ratio, where the time goes, and whether
 * both engines found the same top detections.
 *
 * Run: `npm run bench:predict -- [--images 3] [--rounds 2] [--threads 2]`. Needs Python with torch,
 * torchvision and safetensors: $FEDCXR_PYTHON, else $REFERENCE_VENV/bin/python, else the reference venv
 * (/tmp/fedcxr-reference-venv). Weights are generated once into .cache/bench by
 * tools/reference/predict_bench_weights.py; the ONNX files are exported there from them.
 *
 * With --ablation-batches K (≥ 2), it also times AblationCAM on image 0 (explainDetections on ORT, and the
 * same ablated passes in torchvision): K batches of --cam-batch ablated channels each, then the time for all
 * 1280 channels is extrapolated as setup + ⌈1280 / batch⌉ × the median batch (a full run takes tens of
 * minutes on 2 cores).
 *
 * Each round runs every engine over every image (engines interleaved by round, so load changes on a shared
 * machine hit all of them); one warm-up pass per engine is excluded.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Backbone, type Detection, type DetectorImage, Rng, readSafetensors, tf } from '@fedcxr/core';
import * as ort from 'onnxruntime-node';
import { fasterRcnnSettings } from '../../packages/models-frcnn/src/detector/faster-rcnn.js';
import { ABLATION_VALUE, boxScore } from '../../packages/models-frcnn/src/explain/ablation-cam.js';
import { explainDetections } from '../../packages/models-frcnn/src/explain/pipeline.js';
import { exportFasterRcnnToOnnx, FPN_LEVELS } from '../../packages/models-frcnn/src/onnx/export.js';
import {
  boxHeadPath,
  ONNX_SETTINGS_KEY,
  OnnxFasterRcnn,
  rpnHeadPath,
} from '../../packages/models-frcnn/src/onnx/runtime.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cacheDir = join(root, '.cache/bench');
const weightsPath = join(cacheDir, 'frcnn-resnet50-fpn-c8.safetensors');
const onnxPath = join(cacheDir, 'frcnn-resnet50-fpn-c8-512.onnx');
const SIZE = 512;
/** Foreground classes (torchvision's num_classes 8 counts the background too). */
const NUM_CLASSES = 7;

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
  return value;
}
const imageCount = option('images', 3);
const rounds = option('rounds', 2);
const threads = option('threads', 2);
const ablationBatches = process.argv.includes('--ablation-batches') ? option('ablation-batches', 2) : 0;
const camBatch = option('cam-batch', 16);

const log = (line: string) => process.stdout.write(`${line}\n`);
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

function pythonPath(): string {
  const candidates = [
    process.env.FEDCXR_PYTHON,
    process.env.REFERENCE_VENV && join(process.env.REFERENCE_VENV, 'bin/python'),
    '/tmp/fedcxr-reference-venv/bin/python',
  ];
  const found = candidates.find((p): p is string => !!p && existsSync(p));
  if (!found) {
    throw new Error('bench:predict needs Python with torch/torchvision: set FEDCXR_PYTHON or REFERENCE_VENV');
  }
  return found;
}

/** Deterministic chest-film-like test images: smooth bright field, darker lung-like lobes, fine noise. */
function syntheticImages(count: number): DetectorImage[] {
  const rng = new Rng(12345);
  const random = () => rng.next();
  return Array.from({ length: count }, (_, n) => {
    const pixels = new Float32Array(SIZE * SIZE * 3);
    const cx = [0.32 + 0.02 * n, 0.68 - 0.02 * n];
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const u = x / SIZE;
        const v = y / SIZE;
        let value = 0.75 - 0.2 * v;
        for (const c of cx) value -= 0.45 * Math.exp(-(((u - c) / 0.13) ** 2) - ((v - 0.5) / 0.28) ** 2);
        value += 0.1 * Math.sin(40 * v + n) * Math.exp(-(((u - 0.5) / 0.3) ** 2)) + 0.04 * (random() - 0.5);
        const clamped = Math.min(1, Math.max(0, value));
        pixels.fill(clamped, (y * SIZE + x) * 3, (y * SIZE + x) * 3 + 3);
      }
    }
    return { pixels, height: SIZE, width: SIZE, channels: 3 as const };
  });
}

/** Exports (once per weights file) the ONNX graphs the bench loads. */
async function ensureOnnx(python: string): Promise<void> {
  if (!existsSync(weightsPath)) {
    log(`generating random weights into ${weightsPath} ...`);
    execFileSync(python, [join(root, 'tools/reference/predict_bench_weights.py'), weightsPath], { stdio: 'inherit' });
  }
  const fresh = (file: string) => existsSync(file) && statSync(file).mtimeMs > statSync(weightsPath).mtimeMs;
  if (fresh(onnxPath) && fresh(rpnHeadPath(onnxPath))) return;
  const started = performance.now();
  const { tensors } = await readSafetensors(weightsPath);
  const fpn = { outputs: ['0', '1', '2', '3', 'pool'].map((name, i) => ({ name, stride: 4 * 2 ** i, channels: 256 })) };
  const settings = fasterRcnnSettings(
    { backbone: 'resnet50_fpn', numClasses: NUM_CLASSES, minSize: SIZE, maxSize: SIZE },
    fpn as unknown as Backbone,
  );
  const graphs = exportFasterRcnnToOnnx(tensors, { depth: 50 }, { [ONNX_SETTINGS_KEY]: JSON.stringify(settings) });
  writeFileSync(boxHeadPath(onnxPath), graphs.boxHead);
  writeFileSync(rpnHeadPath(onnxPath), graphs.rpnHead);
  writeFileSync(onnxPath, graphs.features);
  log(`exported ${onnxPath} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

type Pieces = Record<string, number>;
interface Timed {
  total: number;
  pieces: Pieces;
  /** All detections (ORT) or the top 5 (torchvision's answer), in score order. */
  detections: Detection[];
  count: number;
}

/** Times OnnxFasterRcnn.predict and splits it by wrapping its three ORT sessions' run (bench-only access). */
/** Time spent inside ORT session runs, all instrumented models together. */
let ortBusyMs = 0;

function instrument(model: OnnxFasterRcnn): (image: DetectorImage) => Promise<Timed> {
  type SessionName = 'features' | 'roiAlign' | 'boxHead' | 'rpnHeadSession';
  const sessions = model as unknown as Record<SessionName, ort.InferenceSession | null>;
  const marks: Record<string, number> = {};
  let roiAlign = 0;
  const wrap = (name: SessionName) => {
    const session = sessions[name];
    if (!session) return;
    const run = session.run.bind(session) as (feeds: ort.InferenceSession.FeedsType) => Promise<unknown>;
    (session as unknown as { run: typeof run }).run = async (feeds) => {
      const start = performance.now();
      marks[`${name}Start`] ??= start;
      const out = await run(feeds);
      const end = performance.now();
      marks[`${name}End`] = end;
      if (name === 'roiAlign') roiAlign += end - start;
      ortBusyMs += end - start;
      return out;
    };
  };
  wrap('features');
  wrap('roiAlign');
  wrap('boxHead');
  wrap('rpnHeadSession');
  return async (image) => {
    for (const key of Object.keys(marks)) delete marks[key];
    roiAlign = 0;
    const start = performance.now();
    const [detections] = await model.predict([image]);
    const end = performance.now();
    const poolStart = marks.roiAlignStart ?? marks.boxHeadStart;
    return {
      total: end - start,
      detections,
      count: detections.length,
      pieces: {
        transform: marks.featuresStart - start,
        'ORT features (backbone+FPN+RPN head)': marks.featuresEnd - marks.featuresStart,
        'TS proposals (anchors, decode, top-k, NMS)': poolStart - marks.featuresEnd,
        'ORT RoiAlign': roiAlign,
        'TS pooling glue': marks.boxHeadStart - poolStart - roiAlign,
        'ORT box head': marks.boxHeadEnd - marks.boxHeadStart,
        'TS postprocess': end - marks.boxHeadEnd,
      },
    };
  };
}

interface TorchAnswer {
  total_ms: number;
  pieces_ms: Pieces;
  detections: number;
  top: number[][];
}

class TorchWorker {
  private readonly pending: { resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => this.pending.shift()?.resolve(line));
    child.stderr.on('data', (chunk) => process.stderr.write(chunk));
    child.on('exit', (code) => {
      for (const waiter of this.pending.splice(0)) waiter.reject(new Error(`torch worker exited with ${code}`));
    });
  }
  static async start(python: string, imagesFile: string): Promise<TorchWorker> {
    const script = join(root, 'tools/reference/predict_torch_worker.py');
    const args = [script, weightsPath, imagesFile, String(imageCount), String(SIZE), String(threads)];
    const worker = new TorchWorker(spawn(python, args, { stdio: 'pipe' }));
    const ready = JSON.parse(await worker.next());
    log(`torch ${ready.torch}, ${ready.threads} threads`);
    return worker;
  }
  private next(): Promise<string> {
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  async run(index: number): Promise<Timed> {
    this.child.stdin.write(`run ${index}\n`);
    const answer = JSON.parse(await this.next()) as TorchAnswer;
    const detections = answer.top.map(([score, label, ...box]) => ({
      score,
      label,
      box: box as [number, number, number, number],
    }));
    return { total: answer.total_ms, pieces: answer.pieces_ms, detections, count: answer.detections };
  }
  async ablate(index: number): Promise<AblationTiming> {
    this.child.stdin.write(`ablate ${index} ${camBatch} ${ablationBatches}\n`);
    const answer = JSON.parse(await this.next());
    return {
      setupMs: answer.setup_ms,
      batchMs: answer.batch_ms,
      channels: answer.channels,
      scores: answer.scores,
      tops: answer.tops,
    };
  }
  stop(): void {
    this.child.stdin.end('quit\n');
  }
}

class StopAblation extends Error {}

/** AblationCAM on ORT: explainDetections stopped after `ablationBatches` batches (progress marks time them). */
async function ablationOnOrt(model: OnnxFasterRcnn, image: DetectorImage): Promise<AblationTiming> {
  const marks: number[] = [];
  const busy: number[] = [];
  let channels = 0;
  const start = performance.now();
  try {
    await explainDetections(model, image, {
      method: 'ablationcam',
      detection: 0,
      batchSize: camBatch,
      onProgress: (_done, total) => {
        marks.push(performance.now());
        busy.push(ortBusyMs);
        channels = total;
        if (marks.length >= ablationBatches) throw new StopAblation();
      },
    });
  } catch (error) {
    if (!(error instanceof StopAblation)) throw error;
  }
  const batchMs = marks.slice(1).map((t, i) => t - marks[i]);
  const ortMs = busy.slice(1).map((t, i) => t - busy[i]);
  return { setupMs: marks[0] - start - median(batchMs), batchMs, channels, ortMs };
}

interface AblationTiming {
  setupMs: number;
  batchMs: number[];
  channels: number;
  ortMs?: number[];
  scores?: number[];
  /** Each ablated pass's top detection: score, label, x1, y1, x2, y2. */
  tops?: number[][];
}

/**
 * The same ablated passes with the features kept in ORT's NCHW layout: each pass copies the levels once and
 * fills the ablated channel's contiguous h·w plane, no tfjs transposes (a sketch of the fix for pipeline.ts,
 * bench-only). Returns each pass's FasterRCNNBoxScoreTarget score so it can be checked against torchvision's.
 */
async function ablationNchw(model: OnnxFasterRcnn, image: DetectorImage): Promise<AblationTiming> {
  const start = performance.now();
  const { outputs, meta } = await model.forward([image]);
  const [top] = (await model.detect(outputs, meta))[0];
  const target = { boxes: [top.box], labels: [top.label] };
  const setupMs = performance.now() - start;
  const levels = FPN_LEVELS.filter((name) => outputs[`feature_${name}`]);
  const perLevel = outputs.feature_0.dims[1];
  const batchMs: number[] = [];
  const scores: number[] = [];
  const tops: number[][] = [];
  for (let b = 0; b < ablationBatches; b++) {
    const t = performance.now();
    const inputs: Record<string, ort.Tensor> = {};
    levels.forEach((name, level) => {
      const source = outputs[`feature_${name}`];
      const [, c, h, w] = source.dims;
      const data = source.data as Float32Array;
      const out = new Float32Array(camBatch * data.length);
      for (let i = 0; i < camBatch; i++) {
        out.set(data, i * data.length);
        const channel = b * camBatch + i;
        if (Math.floor(channel / perLevel) !== level) continue;
        const plane = i * data.length + (channel % perLevel) * h * w;
        out.fill(ABLATION_VALUE, plane, plane + h * w);
      }
      inputs[`feature_${name}`] = new ort.Tensor('float32', out, [camBatch, c, h, w]);
    });
    const rpn = await model.rpnHead(inputs);
    const repeated = {
      ...meta,
      imageSizes: Array.from({ length: camBatch }, () => meta.imageSizes[0]),
      originalSizes: Array.from({ length: camBatch }, () => meta.originalSizes[0]),
    };
    const detections = await model.detect({ ...inputs, ...rpn }, repeated);
    scores.push(...detections.map((d) => boxScore(target, d)));
    tops.push(...detections.map((d) => (d[0] ? [d[0].score, d[0].label, ...d[0].box] : [])));
    batchMs.push(performance.now() - t);
  }
  return { setupMs, batchMs, channels: levels.length * perLevel, scores, tops };
}

/** Top-5 agreement: same labels, scores within 1e-4, boxes within 0.01 px. */
function compareTop(ours: Detection[], torch: Detection[]): { same: boolean; scoreDiff: number; boxDiff: number } {
  let scoreDiff = 0;
  let boxDiff = 0;
  let same = ours.length >= torch.length;
  torch.forEach((t, k) => {
    const o = ours[k];
    if (!o) return;
    scoreDiff = Math.max(scoreDiff, Math.abs(o.score - t.score));
    t.box.forEach((v, c) => {
      boxDiff = Math.max(boxDiff, Math.abs(o.box[c] - v));
    });
    if (o.label !== t.label) same = false;
  });
  return { same: same && scoreDiff < 1e-4 && boxDiff < 0.01, scoreDiff, boxDiff };
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const python = pythonPath();
  await ensureOnnx(python);
  const images = syntheticImages(imageCount);
  const folder = mkdtempSync(join(tmpdir(), 'bench-predict-'));
  const imagesFile = join(folder, 'images.bin');
  const all = new Float32Array(imageCount * SIZE * SIZE * 3);
  images.forEach((image, i) => {
    all.set(image.pixels, i * SIZE * SIZE * 3);
  });
  writeFileSync(imagesFile, new Uint8Array(all.buffer));

  log(
    `load before: ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')} (cores: ${navigator.hardwareConcurrency})`,
  );
  const torch = await TorchWorker.start(python, imagesFile);
  const ortDefault = await OnnxFasterRcnn.load(onnxPath);
  const ortThreads = await OnnxFasterRcnn.load(onnxPath, { intraOpThreads: threads });
  const engines: [string, (i: number) => Promise<Timed>][] = [
    [
      'ORT node (default CPU)',
      (
        (p) => (i: number) =>
          p(images[i])
      )(instrument(ortDefault)),
    ],
    [
      `ORT node (intraOp ${threads})`,
      (
        (p) => (i: number) =>
          p(images[i])
      )(instrument(ortThreads)),
    ],
    [`torchvision (${threads} threads)`, (i) => torch.run(i)],
  ];

  const results = new Map<string, Timed[]>(engines.map(([name]) => [name, []]));
  let ablation: { ort: AblationTiming; nchw: AblationTiming; torch: AblationTiming } | null = null;
  try {
    for (const [name, run] of engines) {
      const warm = await run(0);
      log(`warm-up ${name}: ${warm.total.toFixed(0)} ms`);
    }
    for (let round = 0; round < rounds; round++) {
      for (const [name, run] of engines) {
        for (let i = 0; i < imageCount; i++) results.get(name)!.push(await run(i));
      }
      log(`round ${round + 1}/${rounds} done`);
    }
    if (ablationBatches > 0) {
      log(`AblationCAM: ${ablationBatches} batches of ${camBatch} ablated channels on each engine ...`);
      ablation = {
        ort: await ablationOnOrt(ortThreads, images[0]),
        nchw: await ablationNchw(ortThreads, images[0]),
        torch: await torch.ablate(0),
      };
    }
  } finally {
    torch.stop();
    await ortDefault.dispose();
    await ortThreads.dispose();
    rmSync(folder, { recursive: true, force: true });
  }

  const medians = new Map([...results].map(([name, runs]) => [name, median(runs.map((r) => r.total))]));
  const torchName = engines[2][0];
  log('');
  log(
    `Faster R-CNN ResNet-50-FPN, ${SIZE}×${SIZE}, ${NUM_CLASSES} classes, CPU, ${imageCount} images × ${rounds} rounds`,
  );
  log(
    `load after: ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  for (const [name, ms] of medians) {
    const ratio = medians.get(torchName)! / ms;
    log(`${name.padEnd(28)} ${ms.toFixed(1).padStart(9)} ms/image (median)   torch/this = ${ratio.toFixed(2)}`);
  }
  for (const [name, runs] of results) {
    log(`\n${name}: median ms per piece`);
    for (const piece of Object.keys(runs[0].pieces)) {
      log(
        `  ${piece.padEnd(44)} ${median(runs.map((r) => r.pieces[piece]))
          .toFixed(1)
          .padStart(9)}`,
      );
    }
  }
  log('\nsame detections (top 5 per image: labels, scores within 1e-4, boxes within 0.01 px), ORT vs torchvision:');
  for (let i = 0; i < imageCount; i++) {
    const ours = results.get(engines[0][0])![i];
    const theirs = results.get(torchName)![i];
    const { same, scoreDiff, boxDiff } = compareTop(ours.detections, theirs.detections);
    const top = (d: Detection | undefined) =>
      d ? `${d.label}@${d.score.toFixed(4)} [${d.box.map((v) => v.toFixed(1)).join(', ')}]` : 'none';
    log(
      `  image ${i}: top ${top(ours.detections[0])} vs ${top(theirs.detections[0])}: ${same ? 'yes' : 'NO'} (max score diff ${scoreDiff.toExponential(1)}, box diff ${boxDiff.toExponential(1)} px; ${ours.count} vs ${theirs.count} detections)`,
    );
  }
  if (ablation) {
    log(
      `\nAblationCAM, image 0, batches of ${camBatch} ablated channels (${ablationBatches} timed, rest extrapolated):`,
    );
    const estimates = new Map<string, number>();
    const nchwName = 'ORT, NCHW ablation (sketch)';
    for (const [name, a] of [
      [engines[1][0], ablation.ort],
      [nchwName, ablation.nchw],
      [torchName, ablation.torch],
    ] as const) {
      const perBatch = median(a.batchMs);
      const estimate = a.setupMs + Math.ceil(a.channels / camBatch) * perBatch;
      estimates.set(name, estimate);
      const inOrt = 'ortMs' in a && a.ortMs ? `, of which in ORT sessions ${median(a.ortMs).toFixed(0)} ms/batch` : '';
      log(
        `  ${name.padEnd(28)} setup ${a.setupMs.toFixed(0)} ms, ${perBatch.toFixed(0)} ms/batch (${(perBatch / camBatch).toFixed(0)} ms/ablated pass; batches ${a.batchMs.map((v) => v.toFixed(0)).join(', ')}), ${a.channels} channels → ${(estimate / 1000).toFixed(0)} s/image${inOrt}`,
      );
    }
    log(
      `  ratio torchvision / ORT AblationCAM: ${(estimates.get(torchName)! / estimates.get(engines[1][0])!).toFixed(2)}× (pipeline.ts), ${(estimates.get(torchName)! / estimates.get(nchwName)!).toFixed(2)}× (NCHW sketch)`,
    );
    const ours = ablation.nchw.scores!;
    const theirs = ablation.torch.scores!;
    const worst = Math.max(...ours.map((v, i) => Math.abs(v - theirs[i])));
    log(
      `  ablated box scores, NCHW sketch vs torchvision (${ours.length} channels): max diff ${worst.toExponential(1)} (scores ${ours.map((v) => v.toFixed(4)).join(', ')})`,
    );
    // The box score is 0 when an ablation moves the target away; the top detections show the passes agree anyway.
    const ourTops = ablation.nchw.tops!;
    const theirTops = ablation.torch.tops!;
    let topScore = 0;
    let topBox = 0;
    let labelsAgree = ourTops.length === theirTops.length;
    ourTops.forEach((o, i) => {
      const t = theirTops[i] ?? [];
      if (o.length !== t.length || o[1] !== t[1]) labelsAgree = false;
      if (o.length === 0 || t.length === 0) return;
      topScore = Math.max(topScore, Math.abs(o[0] - t[0]));
      for (let c = 2; c < 6; c++) topBox = Math.max(topBox, Math.abs(o[c] - t[c]));
    });
    log(
      `  top detection of each ablated pass, NCHW sketch vs torchvision: labels ${labelsAgree ? 'agree' : 'DIFFER'}, max score diff ${topScore.toExponential(1)}, max box diff ${topBox.toExponential(1)} px (scores ${ourTops.map((o) => (o[0] ?? 0).toFixed(4)).join(', ')})`,
    );
  }
  const best = Math.min(medians.get(engines[0][0])!, medians.get(engines[1][0])!);
  log(`\nratio torchvision / ORT (best ORT setting): ${(medians.get(torchName)! / best).toFixed(2)}×`);
}

await main();
