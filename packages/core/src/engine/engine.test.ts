import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { FedcxrError } from '@fedcxr/base';
import { describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { engineConfigSchema, initEngine, loadTorch, probeBackends } from './index.js';

const require = createRequire(import.meta.url);
function installed(name: string): boolean {
  try {
    require.resolve(`${name}/package.json`);
    return true;
  } catch {
    return false;
  }
}

describe('engine', () => {
  it('the config schema defaults to auto and names a bad field', () => {
    expect(engineConfigSchema.parse(undefined)).toEqual({ backend: 'auto', device: 'auto' });
    expect(engineConfigSchema.parse({ backend: 'wasm', threads: 2 })).toEqual({
      backend: 'wasm',
      threads: 2,
      device: 'auto',
    });
    expect(engineConfigSchema.parse({ backend: 'torch', device: 'cuda:1' }).device).toBe('cuda:1');
    const badDevice = engineConfigSchema.safeParse({ backend: 'torch', device: 'gpu' });
    expect(badDevice.success).toBe(false);
    expect(badDevice.error?.issues[0].path).toEqual(['device']);
    expect(engineConfigSchema.safeParse({ backend: 'cuda' }).success).toBe(false);
    expect(engineConfigSchema.safeParse({ threads: 0 }).success).toBe(false);
  });

  it('rejects an unknown backend with a FedcxrError naming engine.backend', async () => {
    const error = await initEngine({ backend: 'cuda' as never }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FedcxrError);
    expect((error as FedcxrError).code).toBe('invalid_config');
    expect((error as FedcxrError).message).toMatch(/backend:/);
  });

  it('cpu is always there and becomes the active backend', async () => {
    const info = await initEngine({ backend: 'cpu' });
    expect(info.backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(info.reason).toMatch(/cpu as configured/);
  });

  it('wasm starts with its training kernels and computes a convolution gradient', async () => {
    const info = await initEngine({ backend: 'wasm', threads: 2 });
    expect(info.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.wasmTrainingKernels?.map((k) => k.kernelName)).toContain('Conv2DBackpropFilter');
    const dw = tf.tidy(() => {
      const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
      return tf.grad((w: tf.Tensor) => tf.sum(tf.conv2d(x, w as tf.Tensor4D, 1, 'valid')))(tf.ones([3, 3, 1, 1]));
    });
    // Each tap of a 3×3 filter sees 2×2 = 4 ones of the valid output window.
    expect(Array.from(dw.dataSync())).toEqual(new Array(9).fill(4));
    dw.dispose();
  });

  it('tensorflow is refused with the reason when tfjs-node is not installed', async () => {
    if (installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu')) {
      expect((await initEngine({ backend: 'tensorflow' })).backend).toBe('tensorflow');
      return;
    }
    const error = await initEngine({ backend: 'tensorflow' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FedcxrError);
    expect((error as FedcxrError).code).toBe('backend_unavailable');
    expect((error as FedcxrError).message).toMatch(/@tensorflow\/tfjs-node is not installed/);
  });

  it('auto picks a working backend and explains what it passed over (torch first when its bridge is built)', async () => {
    const info = await initEngine({ backend: 'auto' });
    expect(tf.getBackend()).toBe(info.backend);
    expect(info.reason).toMatch(new RegExp(`^auto chose ${info.backend}`));
    const torch = loadTorch();
    if (torch.ok) {
      expect(info.backend).toBe('torch');
      expect(info.device).toBe(torch.value.addon.info().cuda ? 'cuda' : 'cpu');
      expect(info.libtorch?.version).toBe(torch.value.addon.info().version);
    } else if (!installed('@tensorflow/tfjs-node') && !installed('@tensorflow/tfjs-node-gpu')) {
      expect(info.reason).toMatch(/passed over torch: .*not built/);
      expect(info.reason).toMatch(/tensorflow: .*not installed/);
      expect(['webgpu', 'wasm']).toContain(info.backend);
    }
  });

  it('torch: a named device libtorch cannot see is refused with the reason; cpu threads are set', async () => {
    const torch = loadTorch();
    if (!torch.ok) {
      const error = await initEngine({ backend: 'torch' }).catch((e: unknown) => e);
      expect((error as FedcxrError).code).toBe('backend_unavailable');
      expect((error as FedcxrError).message).toMatch(/torch bridge is not built/);
      return;
    }
    if (!torch.value.addon.info().cuda) {
      const error = await initEngine({ backend: 'torch', device: 'cuda' }).catch((e: unknown) => e);
      expect((error as FedcxrError).code).toBe('backend_unavailable');
      expect((error as FedcxrError).message).toMatch(/sees no CUDA device/);
    }
    const info = await initEngine({ backend: 'torch', device: 'cpu', threads: 1 });
    expect(info).toMatchObject({ backend: 'torch', device: 'cpu', threads: 1 });
    expect(torch.value.addon.info().threads).toBe(1);
    const again = await initEngine({ backend: 'torch', device: 'cpu', threads: 2 });
    expect(again.threads).toBe(2);
    expect(torch.value.addon.info().threads).toBe(2);
  });

  it('probeBackends reports every backend truthfully and ONNX Runtime', async () => {
    const before = tf.getBackend();
    const probe = await probeBackends();
    expect(tf.getBackend()).toBe(before);
    expect(probe.node).toBe(process.versions.node);
    expect(probe.backends.map((b) => b.name)).toEqual(['torch', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
    for (const backend of probe.backends) expect(backend.reason.length).toBeGreaterThan(0);
    const byName = Object.fromEntries(probe.backends.map((b) => [b.name, b]));
    expect(byName.cpu.available).toBe(true);
    expect(byName.wasm.available).toBe(true);
    expect(byName.wasm.reason).toMatch(/Conv2DBackpropFilter/);
    // webgpu is available exactly when tfjs' backend started on the adapter Dawn reported.
    if (byName.webgpu.available) expect(probe.gpu).not.toBeNull();
    if (!probe.gpu) expect(byName.webgpu.available).toBe(false);
    expect(probe.backends.find((b) => b.name === probe.auto.backend)?.available).toBe(true);
    if (installed('onnxruntime-node')) {
      const { version } = JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as {
        version: string;
      };
      expect(probe.onnxruntime).toMatchObject({ available: true, version });
      expect(probe.onnxruntime.providers?.find((p) => p.name === 'cpu')?.bundled).toBe(true);
    } else {
      expect(probe.onnxruntime.available).toBe(false);
    }
  });
});
