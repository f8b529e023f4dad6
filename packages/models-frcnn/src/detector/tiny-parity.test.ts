import { fileURLToPath } from 'node:url';
import { readSafetensors, tf } from '@fedcxr/core';
import { describe, expect, it } from 'vitest';
import { parityBackend, parityBackendMissing, useFastestBackend } from '../backbones/testing.js';
import {
  lossGradients,
  maxDifference,
  parityImages,
  parityLosses,
  TINY_TEST_DETECTOR,
  withoutPrefix,
} from '../testing.js';
import { FasterRcnn } from './faster-rcnn.js';
import { TinyTestBackbone } from './tiny-backbone.js';

const FIXTURE = fileURLToPath(new URL('../../../../tools/reference/fixtures/frcnn/tiny.safetensors', import.meta.url));

const missingBackend = parityBackendMissing();
if (missingBackend) console.warn(`tiny Faster R-CNN parity skipped: ${missingBackend}`);

describe.skipIf(missingBackend !== null)(
  `Faster R-CNN heads against torchvision (tiny backbone, committed fixture, ${parityBackend})`,
  async () => {
    // wasm with the engine's training kernels (the cpu backend's filter gradient is a scalar loop), or torch.
    if (missingBackend) return;
    await useFastestBackend();
    const { tensors } = await readSafetensors(FIXTURE);
    const images = parityImages(tensors);
    const model = new FasterRcnn(new TinyTestBackbone(), {
      ...TINY_TEST_DETECTOR,
      minSize: 128,
      maxSize: 160,
    });
    model.setWeights(withoutPrefix(tensors, 'weights.'));

    it('getWeights returns the checkpoint it was given (names, torch layouts, values)', () => {
      const given = withoutPrefix(tensors, 'weights.');
      const back = model.getWeights();
      expect([...back.keys()].sort()).toEqual([...given.keys()].sort());
      for (const [name, t] of given) {
        expect(back.get(name)?.shape, name).toEqual(t.shape);
        expect(Array.from(back.get(name)?.data ?? []), name).toEqual(Array.from(t.data));
      }
    });

    it('RPN proposals: same count, same order, boxes within 0.01 px', () => {
      const proposals = model.proposals(images.map((p) => p.image));
      images.forEach((expected, i) => {
        expect(proposals[i].boxes.length / 4).toBe(expected.proposalCount);
        const first = proposals[i].boxes.subarray(0, expected.proposals.length);
        for (let k = 0; k < first.length; k++) expect(Math.abs(first[k] - expected.proposals[k])).toBeLessThan(0.01);
      });
    });

    it('detections in original pixels: same order and labels, boxes within 0.01 px, scores within 1e-4', async () => {
      const detections = await model.predict(images.map((p) => p.image));
      images.forEach((expected, i) => {
        expect(detections[i].length).toBe(expected.scores.length);
        expect(detections[i].length).toBeGreaterThan(10);
        detections[i].forEach((d, k) => {
          expect(d.label).toBe(expected.labels[k]);
          expect(Math.abs(d.score - expected.scores[k])).toBeLessThan(1e-4);
          for (let c = 0; c < 4; c++) expect(Math.abs(d.box[c] - expected.boxes[k * 4 + c])).toBeLessThan(0.01);
        });
      });
    });

    it('training losses for a fixed batch and deterministic sampling within 1e-4, with gradients', () => {
      const expected = parityLosses(tensors);
      const { value, grads } = tf.variableGrads(() => {
        const losses = model.losses(
          images.map((p) => p.image),
          images.map((p) => p.target),
        );
        for (const [name, loss] of Object.entries(losses)) {
          expect(Math.abs(loss.dataSync()[0] - expected[name]), name).toBeLessThan(1e-4);
        }
        expect(Object.keys(losses).sort()).toEqual(Object.keys(expected).sort());
        return tf.addN(Object.values(losses)) as tf.Scalar;
      }, model.trainableVariables());
      expect(value.dataSync()[0]).toBeGreaterThan(0);
      // The backbone learns through RoIAlign and the RPN: its first convolution receives a gradient.
      const backboneGrad = grads[model.trainableVariables().find((v) => v.name.includes('conv1.weight'))?.name ?? ''];
      expect(tf.max(tf.abs(backboneGrad)).dataSync()[0]).toBeGreaterThan(0);
    });

    it("the gradient of the summed losses equals torchvision's for every parameter (within 1e-4 of its scale)", () => {
      // What training follows: a loss that matches while its gradient does not (a missing detach of the
      // proposals, a smooth-L1 beta, RoIAlign's backward) would train a different model.
      const expected = withoutPrefix(tensors, 'grad.');
      const actual = lossGradients(
        model,
        images.map((p) => p.image),
        images.map((p) => p.target),
      );
      expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [name, want] of expected) {
        const got = actual.get(name);
        expect(got?.shape, name).toEqual(want.shape);
        const { diff, scale } = maxDifference(got?.data ?? [], want.data);
        expect(scale, `${name}: a zero reference gradient proves nothing`).toBeGreaterThan(0);
        expect(diff / scale, `${name}: max |Δ| ${diff} against max |g| ${scale}`).toBeLessThan(1e-4);
      }
    });
  },
);
