import { FedcxrError, type ModelCard, writeFileAtomic } from '@fedcxr/core';
import type { FasterRcnn } from '../detector/faster-rcnn.js';
import { exportFasterRcnnToOnnx, type ResnetFpnArchitecture } from './export.js';
import { boxHeadPath, ONNX_CARD_KEY, ONNX_SETTINGS_KEY, rpnHeadPath } from './runtime.js';

/** The ResNet depth behind a registered backbone name, for backbones the ONNX export supports. */
export function exportableDepth(backboneName: string): ResnetFpnArchitecture['depth'] {
  const match = /^resnet(18|34|50|101)_fpn$/.exec(backboneName);
  if (!match) {
    throw new FedcxrError(
      'onnx_export_unsupported',
      `ONNX export supports the ResNet-FPN backbones (resnet18_fpn, resnet34_fpn, resnet50_fpn, resnet101_fpn), not ${backboneName}`,
    );
  }
  return Number(match[1]) as ResnetFpnArchitecture['depth'];
}

/**
 * Writes `<out>` (network: features + RPN head, settings in its metadata), `<name>.box_head.onnx` and
 * `<name>.rpn_head.onnx` (for AblationCAM),
 * atomically. Returns the paths written.
 */
export async function writeOnnxExport(
  detector: FasterRcnn,
  out: string,
  card: Partial<ModelCard> = {},
): Promise<string[]> {
  if (!out.toLowerCase().endsWith('.onnx')) throw new FedcxrError('usage', `the output must end in .onnx: ${out}`);
  const depth = exportableDepth(detector.backbone.name);
  const graphs = exportFasterRcnnToOnnx(
    detector.getWeights(),
    { depth },
    { [ONNX_SETTINGS_KEY]: JSON.stringify(detector.settings), [ONNX_CARD_KEY]: JSON.stringify(card) },
  );
  await writeFileAtomic(out, graphs.features);
  await writeFileAtomic(boxHeadPath(out), graphs.boxHead);
  await writeFileAtomic(rpnHeadPath(out), graphs.rpnHead);
  return [out, boxHeadPath(out), rpnHeadPath(out)];
}
