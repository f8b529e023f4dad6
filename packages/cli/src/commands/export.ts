/**
 * `cxr export onnx --model <dir> --out <file.onnx>`: the detector's network as ONNX (a documented split: the
 * network in ONNX, the detection logic in TypeScript; see @fedcxr/models-frcnn's onnx/export.ts).
 */
import { loadDetector, writeOnnxExport } from '@fedcxr/models-frcnn';
import type { Command } from 'commander';
import { action, withCommonOptions } from '../framework.js';

export function registerExportCommands(program: Command): void {
  const exportCommand = program.command('export').description('export a trained model for other runtimes');
  withCommonOptions(
    exportCommand
      .command('onnx')
      .description(
        'write <out> (backbone + FPN + RPN head) and its .box_head.onnx / .rpn_head.onnx companions, for ONNX Runtime',
      )
      .requiredOption('--model <dir>', 'model directory (weights.safetensors + model.json)')
      .requiredOption('--out <file.onnx>', 'output file'),
  ).action(
    action(async (ctx, flags: { model: string; out: string }) => {
      const { detector, card } = await loadDetector(flags.model);
      try {
        ctx.log(`exporting ${card.architecture} (${card.backbone}, ${card.classes.length - 1} classes)`);
        const files = await writeOnnxExport(detector, flags.out, card);
        return { data: { model: flags.model, files }, human: files.join('\n') };
      } finally {
        detector.dispose();
      }
    }),
  );
}
