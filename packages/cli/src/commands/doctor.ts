/**
 * `cxr doctor`: what this machine offers the engine. Node and cores, every tfjs backend (starts here? if not,
 * why), the GPU adapter WebGPU sees, what `engine.backend: auto` picks, and ONNX Runtime's version and
 * execution providers. Library logic: probeBackends in @fedcxr/core.
 */
import { adapterName, type EngineProbe, FedcxrError, probeBackends } from '@fedcxr/core';
import type { Command } from 'commander';
import { action, withCommonOptions } from '../framework.js';

export function registerDoctorCommands(program: Command): void {
  withCommonOptions(
    program
      .command('doctor')
      .description('report Node, cores, each tensor backend (available or why not), the GPU and ONNX Runtime')
      .option('--threads <n>', 'wasm threads to try (default: every core)'),
  ).action(
    action(async (_ctx, flags: { threads?: string }) => {
      let threads: number | undefined;
      if (flags.threads !== undefined) {
        threads = Number(flags.threads);
        if (!Number.isInteger(threads) || threads < 1) {
          throw new FedcxrError('usage', `--threads must be a positive integer, got "${flags.threads}"`);
        }
      }
      const probe = await probeBackends({ threads });
      return { data: probe, human: formatProbe(probe) };
    }),
  );
}

export function formatProbe(probe: EngineProbe): string {
  const lines = [
    `Node         ${probe.node} (${probe.platform} ${probe.arch}), ${probe.cores} core${probe.cores === 1 ? '' : 's'}`,
    `tfjs         ${probe.tfjsVersion}`,
    'backends',
    ...probe.backends.map((b) => `  ${b.available ? 'yes' : 'no '}  ${b.name.padEnd(11)} ${b.reason}`),
    `GPU adapter  ${probe.gpu ? `${adapterName(probe.gpu)}${probe.gpu.software ? ' (software rasterizer)' : ''}` : 'none'}`,
    `auto         ${probe.auto.backend}: ${probe.auto.reason}`,
  ];
  if (probe.torch.available) {
    lines.push(
      `torch        libtorch ${probe.torch.libtorchVersion} (${probe.torch.libtorch}); device ${probe.torch.device}, ${probe.torch.cudaDevices} CUDA device(s), ${probe.torch.threads} CPU thread(s); torchvision ops ${probe.torch.torchvision}`,
    );
  } else lines.push(`torch        unavailable: ${probe.torch.reason}`);
  const ort = probe.onnxruntime;
  if (ort.available) {
    const providers = ort.providers ?? [];
    const bundled = providers.filter((p) => p.bundled).map((p) => p.name);
    const extra = providers.filter((p) => !p.bundled).map((p) => p.name);
    lines.push(
      `ONNX Runtime ${ort.version ?? '(version unknown)'}; providers: ${bundled.join(', ') || 'none reported'}${
        extra.length ? ` (known but not bundled: ${extra.join(', ')})` : ''
      }`,
    );
  } else {
    lines.push(`ONNX Runtime unavailable: ${ort.reason}`);
  }
  return lines.join('\n');
}
