import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { type EngineProbe, loadTorch } from '@fedcxr/core';
import { describe, expect, it } from 'vitest';
import { runCli } from '../testing.js';

const require = createRequire(import.meta.url);
function packageVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

describe('cxr doctor', () => {
  it('--json reports this machine truthfully', async () => {
    const run = await runCli(['doctor', '--json']);
    expect(run.exitCode).toBe(0);
    const probe = run.json<EngineProbe>();
    expect(probe.node).toBe(process.versions.node);
    expect(probe.cores).toBe(os.availableParallelism());
    expect(probe.tfjsVersion).toBe(packageVersion('@tensorflow/tfjs-core'));
    const byName = Object.fromEntries(probe.backends.map((b) => [b.name, b]));
    expect(Object.keys(byName)).toEqual(['torch', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
    // The torch backend: available exactly when its bridge loads here, with libtorch's own facts.
    const torch = loadTorch();
    expect(byName.torch.available).toBe(torch.ok);
    expect(probe.torch.available).toBe(torch.ok);
    if (torch.ok) {
      const info = torch.value.addon.info();
      expect(probe.torch.libtorchVersion).toBe(info.version);
      expect(probe.torch.cudaDevices).toBe(info.cudaDevices);
      expect(probe.torch.device).toBe(info.cuda ? 'cuda' : 'cpu');
      expect(probe.torch.threads).toBe(os.availableParallelism());
      expect(probe.auto.backend).toBe('torch');
    } else {
      expect(probe.torch.reason).toMatch(/not built|does not load/);
      expect(probe.auto.backend).not.toBe('torch');
    }
    expect(byName.cpu.available).toBe(true);
    expect(byName.wasm.available).toBe(true);
    const nativeInstalled = packageVersion('@tensorflow/tfjs-node') ?? packageVersion('@tensorflow/tfjs-node-gpu');
    expect(byName.tensorflow.available).toBe(nativeInstalled !== undefined);
    if (!nativeInstalled) expect(byName.tensorflow.reason).toMatch(/not installed/);
    if (!packageVersion('webgpu')) expect(byName.webgpu.reason).toMatch(/not installed/);
    if (byName.webgpu.available) expect(probe.gpu).not.toBeNull();
    const ort = packageVersion('onnxruntime-node');
    expect(probe.onnxruntime.available).toBe(ort !== undefined);
    if (ort) expect(probe.onnxruntime.version).toBe(ort);
  });

  it('prints one line per backend for a person', async () => {
    const run = await runCli(['doctor']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^Node +${process.versions.node.replace(/\./g, '\\.')} `, 'm'));
    for (const name of ['torch', 'tensorflow', 'webgpu', 'wasm', 'cpu'])
      expect(run.stdout).toMatch(new RegExp(`^ {2}(yes|no ) +${name} `, 'm'));
    expect(run.stdout).toMatch(/^ {2}yes +cpu /m);
    expect(run.stdout).toMatch(/^ONNX Runtime /m);
    expect(run.stdout).toMatch(/^GPU adapter /m);
    expect(run.stdout).toMatch(/^torch {8}(libtorch |unavailable: )/m);
  });

  it('rejects a bad --threads as a usage error', async () => {
    const run = await runCli(['doctor', '--threads', 'zero', '--json']);
    expect(run.exitCode).toBe(2);
    expect(run.json<{ error: { message: string } }>().error.message).toMatch(/--threads/);
  });
});
