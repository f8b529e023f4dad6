/**
 * `cxr weights import|download|list`: bring torchvision checkpoints (.pth or .safetensors) in as model
 * directories, fetch the official files when online, and list what is known. Library logic lives in
 * @fedcxr/models-frcnn (weights/import.ts, weights/download.ts, model-dir.ts).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { backbones, FedcxrError } from '@fedcxr/core';
import { archAliases, downloadOfficialWeights, importCheckpoint, officialWeights } from '@fedcxr/models-frcnn';
import type { Command } from 'commander';
import { action, withCommonOptions } from '../framework.js';

interface ImportFlags {
  arch: string;
  numClasses?: string;
  classes?: string;
  out: string;
}

interface DownloadFlags {
  dir?: string;
  baseUrl?: string;
  timeout?: string;
}

export const DEFAULT_WEIGHTS_DIR = join(homedir(), '.cache', 'fedcxr', 'weights');

export function registerWeightsCommands(program: Command): void {
  const weights = program.command('weights').description('import and download torchvision weights');

  withCommonOptions(
    weights
      .command('import')
      .description(
        'convert a torchvision checkpoint (COCO Faster R-CNN or ImageNet resnet/swin_t; .pth or .safetensors) into a model directory',
      )
      .argument('<file>', 'checkpoint file (.pth or .safetensors)')
      .requiredOption(
        '--arch <name>',
        'backbone (resnet18_fpn, resnet50_fpn, resnet101_fpn, swin_t_fpn) or fasterrcnn_resnet50_fpn',
      )
      .option(
        '--num-classes <n>',
        'foreground classes (the background is not counted); another count re-initializes the box predictor',
      )
      .option('--classes <names>', 'comma-separated class names, background excluded (sets --num-classes)')
      .requiredOption('--out <dir>', 'model directory to write (weights.safetensors + model.json)'),
  ).action(
    action(async (ctx, file: string, flags: ImportFlags) => {
      let numClasses: number | undefined;
      if (flags.numClasses !== undefined) {
        numClasses = Number(flags.numClasses);
        if (!Number.isInteger(numClasses) || numClasses < 1) {
          throw new FedcxrError(
            'usage',
            `--num-classes counts the foreground classes (not the background): an integer ≥ 1, got "${flags.numClasses}"`,
          );
        }
      }
      const classes = flags.classes
        ?.split(',')
        .map((c) => c.trim())
        .filter((c) => c !== '');
      const started = performance.now();
      const summary = await importCheckpoint(file, { arch: flags.arch, numClasses, classes, out: flags.out });
      const seconds = (performance.now() - started) / 1000;
      ctx.log(`imported ${summary.tensors} tensors (${summary.layout} layout) in ${seconds.toFixed(1)} s`);
      const lines = [
        `${summary.out}: ${summary.backbone}, ${summary.classes.length - 1} classes, ${summary.tensors} tensors from a ${summary.layout} checkpoint`,
      ];
      if (summary.dropped.length > 0) {
        const shown = summary.dropped.filter((k) => !k.endsWith('num_batches_tracked'));
        lines.push(`dropped: ${shown.join(', ') || '(none but num_batches_tracked)'}`);
      }
      if (summary.uninitialized.length > 0) {
        lines.push(`initialized when the detector is built: ${summary.uninitialized.join(', ')}`);
      }
      return { data: summary, human: lines.join('\n') };
    }),
  );

  withCommonOptions(
    weights
      .command('download')
      .description('fetch an official torchvision checkpoint (needs internet access)')
      .argument('<name>', `one of ${Object.keys(officialWeights()).join(', ')}`)
      .option('--dir <dir>', `where to save it (default ${DEFAULT_WEIGHTS_DIR})`)
      .option('--base-url <url>', 'a mirror of https://download.pytorch.org/models')
      .option('--timeout <seconds>', 'give up connecting after this long', '30'),
  ).action(
    action(async (ctx, name: string, flags: DownloadFlags) => {
      const timeoutMs = Number(flags.timeout ?? '30') * 1000;
      if (!(timeoutMs > 0)) throw new FedcxrError('usage', `--timeout must be a positive number of seconds`);
      const known = officialWeights();
      if (!known[name]) {
        throw new FedcxrError('usage', `unknown weights "${name}"; known: ${Object.keys(known).join(', ')}`);
      }
      ctx.log(`downloading ${known[name].url}`);
      const result = await downloadOfficialWeights(name, {
        dir: flags.dir ?? DEFAULT_WEIGHTS_DIR,
        baseUrl: flags.baseUrl,
        timeoutMs,
      });
      return {
        data: result,
        human: `${result.file} (${(result.bytes / 1e6).toFixed(1)} MB, SHA-256 ${result.sha256.slice(0, 12)}…)\nnext: cxr weights import ${result.file} --arch ${result.arch} --out <model-dir>`,
      };
    }),
  );

  withCommonOptions(weights.command('list').description('official checkpoints and registered backbones')).action(
    action(async () => {
      const official = Object.entries(officialWeights()).map(([name, entry]) => ({ name, ...entry }));
      const aliases = archAliases();
      const registered = backbones.describe();
      const human = [
        'official checkpoints (cxr weights download <name>):',
        ...official.map((o) => `  ${o.name.padEnd(30)} --arch ${o.arch.padEnd(14)} ${o.description}`),
        'backbones (--arch):',
        ...registered.map((b) => `  ${b.name.padEnd(30)} ${b.description}`),
        `  aliases: ${Object.entries(aliases)
          .map(([a, b]) => `${a} → ${b}`)
          .join(', ')}`,
      ].join('\n');
      return { data: { official, backbones: registered, aliases }, human };
    }),
  );
}
