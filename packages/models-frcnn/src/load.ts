/**
 * A model directory → a ready detector: the card names the detector and backbone in the registries and the
 * preprocessing; the weights load by torchvision name. Cards from `cxr weights import` and from training
 * checkpoints are both model directories.
 */
import { detectors, FedcxrError, loadModelDir, type ModelCard, type NamedTensors } from '@fedcxr/core';
import type { FasterRcnn } from './detector/faster-rcnn.js';
import { registerFasterRcnn } from './detector/faster-rcnn.js';

export interface LoadedDetector {
  detector: FasterRcnn;
  card: ModelCard;
  weights: NamedTensors;
}

export async function loadDetector(dir: string): Promise<LoadedDetector> {
  const { card, weights } = await loadModelDir(dir);
  registerFasterRcnn();
  // Older or alternative spellings a card may carry are the registry entry's aliases ('fasterrcnn').
  const name = detectors.resolve(card.architecture);
  if (!name) {
    throw new FedcxrError(
      'model_dir',
      `unknown detector "${card.architecture}" (registered: ${detectors.list().join(', ')})`,
      {
        file: dir,
      },
    );
  }
  const detector = detectors.build(name, {
    backbone: card.backbone,
    // The card lists '__background__' first; numClasses counts the foreground classes.
    numClasses: card.classes.length - 1,
    classes: card.classes,
    minSize: card.preprocessing.minSize,
    maxSize: card.preprocessing.maxSize,
    imageMean: card.preprocessing.imageMean,
    imageStd: card.preprocessing.imageStd,
    ...(card.options ?? {}),
  }) as FasterRcnn;
  // A directory whose card lists uninitialized parts (an ImageNet backbone import) keeps the fresh heads.
  detector.setWeights(weights, { strict: card.weights.uninitialized.length === 0 });
  return { detector, card, weights };
}
