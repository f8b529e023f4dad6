/**
 * Proof that training really learns with the real detector: Faster R-CNN with a small backbone
 * (resnet18_fpn, randomly initialized) overfits a few synthetic images to AP50 ≥ 0.9, and a run stopped
 * mid-epoch and resumed ends with the same weights as one never stopped. Runs in CI (CI=true) or with
 * FEDCXR_PROOF=1; elsewhere it is skipped so a shared workstation's quick test runs stay quick.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildTrainingDetector,
  type Detector,
  datasetFromCoco,
  FedcxrError,
  initEngine,
  loadTorch,
  parseTrainConfig,
  Rng,
  synthesizeShapes,
  type TrainConfigInput,
  trainDetector,
} from '@fedcxr/core';
import '@fedcxr/models-frcnn'; // registers resnet18_fpn and faster_rcnn
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const enabled = Boolean(process.env.CI || process.env.FEDCXR_PROOF);
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fedcxr-frcnn-proof-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const set = synthesizeShapes({ count: 2, size: 64, seed: 1 });
const data = () => datasetFromCoco(set.coco, async (_image, index) => set.images[index]);

/** A Faster R-CNN sized for 64-px images: anchors 8–128 px, fewer proposals and sampled RoIs. */
function proofConfig(extra: Partial<TrainConfigInput>, backend: 'wasm' | 'torch') {
  return parseTrainConfig({
    data: { train: 'synthetic' },
    batchSize: 2,
    model: {
      detector: 'faster_rcnn',
      backbone: 'resnet18_fpn',
      minSize: 64,
      maxSize: 64,
      trainableLayers: 3,
      options: {
        rpn: {
          anchorSizes: [[8], [16], [32], [64], [128]],
          preNmsTopN: { training: 300, testing: 300 },
          postNmsTopN: { training: 100, testing: 100 },
          batchSizePerImage: 64,
        },
        roi: { batchSizePerImage: 64, representationSize: 128 },
      },
    },
    optimizer: { lr: 0.005 },
    augmentation: { rotationDegrees: 0, brightness: 0, contrast: 0 },
    // One thread: XNNPACK's (and ATen's) multi-threaded reductions may sum in a different order from run to run.
    engine: { backend, threads: 1, ...(backend === 'torch' ? { device: 'cpu' } : {}) },
    ...extra,
  });
}

function build(config: ReturnType<typeof proofConfig>): { detector: Detector; stepRandom: Rng } {
  const stepRandom = new Rng(config.seed);
  return { detector: buildTrainingDetector(config, ['square', 'disc'], stepRandom), stepRandom };
}

// The same proof on the torch backend wherever its bridge is built (CI builds it).
const backends: ('wasm' | 'torch')[] = loadTorch().ok ? ['wasm', 'torch'] : ['wasm'];

describe.skipIf(!enabled).each(backends)('Faster R-CNN training proof (resnet18_fpn, 64 px, %s)', (backend) => {
  it('overfits two synthetic images to AP50 ≥ 0.9', async () => {
    const config = proofConfig(
      {
        epochs: 30,
        schedule: { warmupSteps: 3, type: 'constant' },
        validation: { everyEpochs: 10, metric: 'AP50' },
      },
      backend,
    );
    await initEngine(config.engine);
    const { detector, stepRandom } = build(config);
    const started = performance.now();
    try {
      const run = await trainDetector({
        config,
        detector,
        train: data(),
        val: data(),
        runDir: join(root, 'overfit'),
        stepRandom,
      });
      const validated = run.history.filter((r) => r.val);
      const line = validated.map((r) => `epoch ${r.epoch}: AP50 ${r.val?.AP50.toFixed(3)} AP ${r.val?.AP.toFixed(3)}`);
      console.log(
        `faster_rcnn resnet18_fpn overfit, ${run.stepsDone} steps in ${((performance.now() - started) / 1000).toFixed(0)} s: ${line.join('; ')}`,
      );
      // The run keeps the best epoch by AP50 (validation.metric): that checkpoint is the overfit model.
      expect(run.best?.value).toBeGreaterThanOrEqual(0.9);
    } finally {
      detector.dispose();
    }
  }, 900_000);

  it('resumes a run stopped mid-epoch to the same final weights', async () => {
    await provesExactResume(resumeConfig({}, backend), 'resnet18');
  }, 900_000);
});

// Swin-T's drop path draws from the step stream too (seeded from the training state): its resume is exact.
describe.skipIf(!enabled)('Faster R-CNN training proof (swin_t_fpn, 64 px, wasm)', () => {
  it('resumes a run stopped mid-epoch to the same final weights (drop path included)', async () => {
    await provesExactResume(resumeConfig({ backbone: 'swin_t_fpn' }, 'wasm'), 'swin');
  }, 900_000);
});

function resumeConfig(model: { backbone?: string }, backend: 'wasm' | 'torch') {
  const config = proofConfig(
    {
      epochs: 2,
      batchSize: 1,
      seed: 4,
      schedule: { warmupSteps: 1, type: 'constant' },
      augmentation: { rotationDegrees: 5, brightness: 0.1, contrast: 0.1 },
      checkpoint: { everySteps: 1 },
    },
    backend,
  );
  return { ...config, model: { ...config.model, ...model } };
}

/** A run stopped at the first step of epoch 2 and resumed in a fresh detector ends with the uninterrupted run's weights. */
async function provesExactResume(config: ReturnType<typeof proofConfig>, label: string): Promise<void> {
  await initEngine(config.engine);
  // Millions of weights: compare a SHA-256 of each tensor's bytes (a deep equality of plain arrays takes minutes).
  const snapshot = (d: Detector) =>
    [...d.getWeights()].map(([name, t]) => {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      return `${name} ${createHash('sha256').update(bytes).digest('hex')}`;
    });
  const whole = build(config);
  // Start both runs from the same weights (as a run from `model.weights` does); the resumed run gets
  // everything from the checkpoint.
  const initial = whole.detector.getWeights();
  let expected: ReturnType<typeof snapshot>;
  try {
    await trainDetector({ config, ...whole, train: data(), runDir: join(root, `${label}-whole`) });
    expected = snapshot(whole.detector);
  } finally {
    whole.detector.dispose();
  }
  const controller = new AbortController();
  const killed = build(config);
  killed.detector.setWeights(initial);
  let steps = 0;
  try {
    await expect(
      trainDetector({
        config,
        ...killed,
        train: data(),
        runDir: join(root, `${label}-killed`),
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'step' && ++steps === 3) controller.abort(); // first step of epoch 2
        },
      }),
    ).rejects.toBeInstanceOf(FedcxrError);
  } finally {
    killed.detector.dispose();
  }
  const resumed = build({ ...config, seed: 4 });
  try {
    await trainDetector({ config, ...resumed, train: data(), runDir: join(root, `${label}-killed`), resume: true });
    expect(snapshot(resumed.detector)).toEqual(expected);
  } finally {
    resumed.detector.dispose();
  }
}
