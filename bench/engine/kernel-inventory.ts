/**
 * Lists the tfjs kernels a Faster R-CNN training step and prediction run (per backbone), by tf.profile on the
 * cpu backend. The torch backend must register every one (tests assert it on a real step); this prints them.
 *
 *   node --experimental-transform-types --no-warnings --import ./bench/register.mjs bench/engine/kernel-inventory.ts
 */
import { type DetectorImage, type DetectorTarget, detectors, initEngine, tf } from '@fedcxr/core';
import '@fedcxr/models-frcnn';

await initEngine({ backend: 'cpu' });
const size = 64;
const image: DetectorImage = {
  pixels: Float32Array.from({ length: size * size }, (_, i) => (i % 7) / 7),
  height: size,
  width: size,
  channels: 1,
};
const target: DetectorTarget = { boxes: Float32Array.from([8, 10, 40, 44]), labels: Int32Array.from([1]) };
const all = new Set<string>();
for (const backbone of (process.argv[2] ?? 'resnet18_fpn,resnet50_fpn,swin_t_fpn').split(',')) {
  const model = detectors.build('faster_rcnn', {
    backbone,
    numClasses: 2,
    minSize: size,
    maxSize: size,
    backboneOptions: { trainableLayers: 5 },
  });
  const optimizer = tf.train.momentum(1e-4, 0.9);
  const profile = await tf.profile(async () => {
    const cost = optimizer.minimize(
      () => tf.addN(Object.values(model.losses([image], [target]))) as tf.Scalar,
      true,
      model.trainableVariables(),
    );
    cost?.dispose();
    await model.predict([image]);
  });
  const names = [...new Set(profile.kernelNames)].sort();
  for (const n of names) all.add(n);
  process.stdout.write(`${backbone}: ${names.join(' ')}\n`);
  model.dispose();
}
process.stdout.write(`all (${all.size}): ${[...all].sort().join(' ')}\n`);
