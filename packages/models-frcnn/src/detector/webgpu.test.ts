/**
 * Faster R-CNN on tfjs' webgpu backend in Node (Dawn; Mesa lavapipe on a CPU machine): predict matches
 * torchvision (the tiny committed fixture), and training fails with a typed error instead of tfjs-webgpu's
 * `OffscreenCanvas is not defined` (its only synchronous read path). Skips, saying why, where Dawn has no adapter.
 * bench/gpu measures the same on a real GPU.
 */
import { fileURLToPath } from 'node:url';
import { FedcxrError, initEngine, readSafetensors, tf } from '@fedcxr/core';
import { describe, expect, it } from 'vitest';
import { parityImages, TINY_TEST_DETECTOR, withoutPrefix } from '../testing.js';
import { FasterRcnn } from './faster-rcnn.js';
import { TinyTestBackbone } from './tiny-backbone.js';

const FIXTURE = fileURLToPath(new URL('../../../../tools/reference/fixtures/frcnn/tiny.safetensors', import.meta.url));

const unavailable = await initEngine({ backend: 'webgpu' }).then(
  () => null,
  (error: Error) => error.message,
);
if (unavailable) console.warn(`skipping the webgpu detector test: ${unavailable}`);

describe.skipIf(unavailable !== null)('Faster R-CNN on the webgpu backend (tiny backbone, committed fixture)', () => {
  const build = async () => {
    const { tensors } = await readSafetensors(FIXTURE);
    const model = new FasterRcnn(new TinyTestBackbone(), {
      ...TINY_TEST_DETECTOR,
      minSize: 128,
      maxSize: 160,
    });
    model.setWeights(withoutPrefix(tensors, 'weights.'));
    return { model, images: parityImages(tensors) };
  };

  it('predict reads asynchronously and gives torchvision detections (boxes within 0.01 px, scores within 1e-4)', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    const { model, images } = await build();
    const before = tf.memory().numTensors;
    const detections = await model.predict(images.map((p) => p.image));
    expect(tf.memory().numTensors).toBe(before);
    images.forEach((expected, i) => {
      expect(detections[i].length).toBe(expected.scores.length);
      detections[i].forEach((d, k) => {
        expect(d.label).toBe(expected.labels[k]);
        expect(Math.abs(d.score - expected.scores[k])).toBeLessThan(1e-4);
        for (let c = 0; c < 4; c++) expect(Math.abs(d.box[c] - expected.boxes[k * 4 + c])).toBeLessThan(0.01);
      });
    });
    model.dispose();
  }, 120_000);

  it('losses fail with backend_unavailable naming the backend and what to use instead', async () => {
    const { model, images } = await build();
    let thrown: unknown;
    try {
      model.losses(
        images.map((p) => p.image),
        images.map((p) => p.target),
      );
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(FedcxrError);
    expect((thrown as FedcxrError).code).toBe('backend_unavailable');
    expect((thrown as FedcxrError).message).toMatch(/webgpu backend.*wasm or tensorflow/);
    model.dispose();
  });
});
