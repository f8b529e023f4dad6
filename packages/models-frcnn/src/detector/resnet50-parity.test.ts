/**
 * fasterrcnn_resnet50_fpn end to end against torchvision: the random-weight checkpoint (a real .pth,
 * read by the .pth importer) is generated into .cache/reference/frcnn by
 * tools/reference/frcnn_make_fixtures.py (about 40 s with the reference venv); the expected proposals,
 * detections and losses are committed. Skips with a message when neither the checkpoint nor Python exists.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Detector, detectors, type NamedTensors, readSafetensors, tf } from '@fedcxr/core';
import { beforeAll, describe, expect, it } from 'vitest';
import '../backbones/index.js';
import { parityBackend, parityBackendMissing, useFastestBackend } from '../backbones/testing.js';
import {
  lossGradients,
  maxDifference,
  parityImages,
  parityLosses,
  reversedPermutation,
  trainingBatch,
  withoutPrefix,
} from '../testing.js';
import { readPth } from '../weights/pth.js';
import { FasterRcnn, registerFasterRcnn } from './faster-rcnn.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CHECKPOINT = `${ROOT}.cache/reference/frcnn/fasterrcnn_resnet50_fpn_random.pth`;
const EXPECTED = `${ROOT}tools/reference/fixtures/frcnn/resnet50_fpn_expected.safetensors`;

function ensureCheckpoint(): string | null {
  if (existsSync(CHECKPOINT)) return null;
  try {
    const venv = execFileSync('bash', [`${ROOT}../shared/tools/python-reference-env.sh`], { encoding: 'utf8' }).trim();
    execFileSync(`${venv}/bin/python`, [`${ROOT}tools/reference/frcnn_make_fixtures.py`, 'resnet50-checkpoint'], {
      stdio: 'ignore',
    });
    return existsSync(CHECKPOINT) ? null : 'the reference script ran but wrote no checkpoint';
  } catch (error) {
    return `no reference checkpoint and no Python reference environment (${(error as Error).message.split('\n')[0]})`;
  }
}

const missing = parityBackendMissing() ?? ensureCheckpoint();
if (missing) console.warn(`skipping the ResNet-50-FPN Faster R-CNN parity test: ${missing}`);

describe.skipIf(missing !== null)(
  `fasterrcnn_resnet50_fpn against torchvision (random weights, .pth import, ${parityBackend})`,
  () => {
    // Set up in beforeAll: a skipped suite's body still runs to collect its tests.
    let model: Detector;
    let tensors: NamedTensors;
    let images: ReturnType<typeof parityImages>;
    beforeAll(async () => {
      await useFastestBackend();
      registerFasterRcnn();
      ({ tensors } = await readSafetensors(EXPECTED));
      images = parityImages(tensors);
      model = detectors.build('faster_rcnn', {
        backbone: 'resnet50_fpn',
        numClasses: 2,
        minSize: 256,
        maxSize: 320,
        permutation: reversedPermutation,
        backboneOptions: { randomInit: false },
      });
      model.setWeights(await readPth(CHECKPOINT));
    }, 300_000);

    it('detections in original pixels: same order and labels, boxes within 0.01 px, scores within 1e-4', async () => {
      const detections = await model.predict(images.map((p) => p.image));
      images.forEach((expected, i) => {
        expect(detections[i].length).toBe(expected.scores.length);
        detections[i].forEach((d, k) => {
          expect(d.label, `image ${i} detection ${k}`).toBe(expected.labels[k]);
          expect(Math.abs(d.score - expected.scores[k])).toBeLessThan(1e-4);
          for (let c = 0; c < 4; c++) expect(Math.abs(d.box[c] - expected.boxes[k * 4 + c])).toBeLessThan(0.01);
        });
      });
    });

    it('training losses for a fixed (unpadded) batch with deterministic sampling within 1e-4', () => {
      const expected = parityLosses(tensors);
      const losses = tf.tidy(() => {
        const batch = trainingBatch(tensors);
        const out = model.losses(batch.images, batch.targets);
        return Object.fromEntries(Object.entries(out).map(([name, loss]) => [name, loss.dataSync()[0]]));
      });
      expect(Object.keys(losses).sort()).toEqual(Object.keys(expected).sort());
      for (const [name, value] of Object.entries(losses)) {
        expect(Math.abs(value - expected[name]), `${name}: ${value} vs ${expected[name]}`).toBeLessThan(1e-4);
      }
    });

    it("the summed losses' gradient matches torchvision's: same trainable set, norms within 5e-4, first values", () => {
      // ResNet-50's full gradient would be a 100 MB fixture: the reference keeps each parameter's L2 norm and
      // its first 64 values (torch layout; the norm in float64: in float32 fc6's is off by 1e-3). Frozen layers (conv1, layer1: 3 trainable layers) get none.
      if (!(model instanceof FasterRcnn)) throw new Error('the registry built something other than FasterRcnn');
      const norms = withoutPrefix(tensors, 'gradnorm.');
      const heads = withoutPrefix(tensors, 'gradhead.');
      const batch = trainingBatch(tensors);
      const actual = lossGradients(model, batch.images, batch.targets);
      expect([...actual.keys()].sort()).toEqual([...norms.keys()].sort());
      for (const [name, want] of norms) {
        const got = actual.get(name)?.data ?? new Float32Array();
        let sumSquares = 0;
        for (let i = 0; i < got.length; i++) sumSquares += got[i] * got[i];
        const norm = Math.sqrt(sumSquares);
        expect(want.data[0], `${name}: a zero reference gradient proves nothing`).toBeGreaterThan(0);
        // float32 through 50 layers of backward: both engines land within 1.5e-4 of the reference (layer2).
        expect(Math.abs(norm - want.data[0]) / want.data[0], `${name}: |g| ${norm} vs ${want.data[0]}`).toBeLessThan(
          5e-4,
        );
        const head = heads.get(name)?.data ?? new Float32Array();
        const { diff } = maxDifference(got.subarray(0, head.length), head);
        expect(diff / want.data[0], `${name}: first values off by ${diff}`).toBeLessThan(1e-4);
      }
    }, 300_000);
  },
);
