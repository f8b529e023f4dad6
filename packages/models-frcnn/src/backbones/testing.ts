/**
 * Test support for the parity tests: the fastest tfjs backend here, the synthetic input both sides compute,
 * and the cached torchvision checkpoints (generated on demand by tools/reference/backbone_make_fixtures.py
 * when the Python reference environment can be built).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initEngine, tf } from '@fedcxr/core';

export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
export const backboneCache = `${repoRoot}.cache/reference/backbones`;
export const backboneFixtures = `${repoRoot}tools/reference/fixtures/backbones`;

/** wasm (XNNPACK, with core's training kernels) through core's initEngine, else cpu. */
export async function useFastestBackend(): Promise<string> {
  try {
    await initEngine({ backend: 'wasm' });
  } catch {
    await initEngine({ backend: 'cpu' });
  }
  await tf.ready();
  return tf.getBackend();
}

/** The synthetic image batch of backbone_make_fixtures.py, NHWC float32. */
export function syntheticImages(batch: number, height: number, width: number): tf.Tensor4D {
  const data = new Float32Array(batch * height * width * 3);
  let k = 0;
  for (let n = 0; n < batch; n++)
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++)
        for (let c = 0; c < 3; c++) {
          const v =
            Math.sin(0.11 * y * (c + 1) + 0.3 * n) * Math.cos(0.07 * x - 0.5 * c) + 0.25 * Math.sin(0.013 * x * y + c);
          data[k++] = 1.8 * v;
        }
  return tf.tensor4d(data, [batch, height, width, 3]);
}

/**
 * Path of the cached checkpoint for `arch`, generating it if needed; undefined (with the reason) when the
 * Python reference environment cannot be built here.
 */
export function cachedCheckpoint(arch: string): { path?: string; reason?: string } {
  return cached(`${backboneCache}/${arch}.pth`, ['--checkpoints-only', '--arch', arch]);
}

/** The COCO/ImageNet-layout checkpoints (random weights) for import tests, generated on demand. */
export function cachedImportLayout(
  name: 'fasterrcnn_resnet50_fpn_coco-layout' | 'resnet50-imagenet-layout' | 'swin_t-imagenet-layout',
): { path?: string; reason?: string } {
  return cached(`${backboneCache}/${name}.pth`, ['--import-layouts']);
}

function cached(path: string, scriptArgs: string[]): { path?: string; reason?: string } {
  if (existsSync(path)) return { path };
  let venv: string;
  try {
    venv = execFileSync('bash', [`${repoRoot}../shared/tools/python-reference-env.sh`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 600_000,
    }).trim();
  } catch (error) {
    return { reason: `no Python reference environment (${(error as Error).message.split('\n')[0]})` };
  }
  const started = performance.now();
  try {
    execFileSync(
      `${venv}/bin/python`,
      [`${repoRoot}tools/reference/backbone_make_fixtures.py`, ...scriptArgs, '--cache', backboneCache],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 },
    );
  } catch (error) {
    return { reason: `generating ${path} failed: ${(error as Error).message.split('\n')[0]}` };
  }
  console.log(`generated ${path} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { path };
}
