/**
 * Opens a model for inference on ONNX Runtime, whatever the user points at: an exported `.onnx` file, or a
 * model directory (exported to ONNX in memory; the network then runs in ORT and the detection logic in
 * TypeScript, identically to the tfjs model — proven by the export's parity tests).
 */
import { stat } from 'node:fs/promises';
import { FedcxrError, type ModelCard } from '@fedcxr/core';
import {
  exportableDepth,
  exportFasterRcnnToOnnx,
  loadDetector,
  ONNX_CARD_KEY,
  ONNX_SETTINGS_KEY,
  OnnxFasterRcnn,
} from '@fedcxr/models-frcnn';
import { type InputPreparation, preparationFromCard } from './input.js';

export interface InferenceModel {
  model: OnnxFasterRcnn;
  card: Partial<ModelCard>;
  preparation: InputPreparation;
  classes: readonly string[];
  /** COCO category id of each class index (index 0, background, unused). */
  categoryIds: number[];
}

export async function openInferenceModel(path: string, options: { threads?: number } = {}): Promise<InferenceModel> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch {
    throw new FedcxrError('model_missing', 'no such model directory or .onnx file', { file: path });
  }
  const loadOptions = options.threads ? { intraOpThreads: options.threads } : {};
  let model: OnnxFasterRcnn;
  let card: Partial<ModelCard>;
  if (isDirectory) {
    const loaded = await loadDetector(path);
    try {
      const depth = exportableDepth(loaded.detector.backbone.name);
      const graphs = exportFasterRcnnToOnnx(
        loaded.detector.getWeights(),
        { depth },
        { [ONNX_SETTINGS_KEY]: JSON.stringify(loaded.detector.settings), [ONNX_CARD_KEY]: JSON.stringify(loaded.card) },
      );
      model = await OnnxFasterRcnn.fromGraphs(graphs, loaded.detector.settings, loaded.card, loadOptions);
      card = loaded.card;
    } finally {
      loaded.detector.dispose();
    }
  } else {
    model = await OnnxFasterRcnn.load(path, loadOptions);
    card = model.card;
  }
  const classes = model.classes;
  const recorded = Array.isArray(card.categoryIds) ? card.categoryIds : null;
  const categoryIds = [0, ...(recorded ?? classes.slice(1).map((_, i) => i + 1))];
  return { model, card, preparation: preparationFromCard(card), classes, categoryIds };
}
