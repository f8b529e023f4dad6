/**
 * The configs the repo ships parse as `cxr train` parses them, and carry the numbers they claim: the seed
 * study's recipe (configs/seed-recipe.yaml), and every bench/quality configuration turned into fedcxr's config.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseTrainConfig } from '@fedcxr/core';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { CONFIGURATIONS, oursConfig, type Recipe } from '../bench/quality/recipes.js';

const seedRecipeFile = fileURLToPath(new URL('../configs/seed-recipe.yaml', import.meta.url));

describe('configs/seed-recipe.yaml', () => {
  it("is the seed study's recipe: SGD Nesterov lr 0.003, batch 4, 18 epochs, ±5° rotation, jitter, best by AP", () => {
    const config = parseTrainConfig(YAML.parse(readFileSync(seedRecipeFile, 'utf8')), seedRecipeFile);
    expect(config).toMatchObject({
      epochs: 18,
      batchSize: 4,
      optimizer: { type: 'sgd', lr: 0.003, momentum: 0.9, nesterov: true },
      augmentation: { rotationDegrees: 5, brightness: 0.1, contrast: 0.1, horizontalFlip: false },
      validation: { metric: 'AP', mode: 'max' },
      model: { detector: 'faster_rcnn', backbone: 'resnet50_fpn', weights: 'coco-frcnn' },
    });
  });
});

describe('bench/quality configurations', () => {
  for (const [name, template] of Object.entries(CONFIGURATIONS)) {
    it(`${name}: fedcxr's config parses and says what torchvision's side is told`, () => {
      const { imageSize, ...rest } = template;
      const recipe: Recipe = {
        ...rest,
        seed: 1,
        data: { size: imageSize, train: 'train.json', val: 'val.json', test: 'test.json' },
      };
      const config = parseTrainConfig(oursConfig(recipe, 'runs', 'init-model', 'wasm'), name);
      expect(config.epochs).toBe(recipe.epochs);
      expect(config.batchSize).toBe(recipe.batchSize);
      expect(config.seed).toBe(1);
      expect(config.optimizer).toMatchObject(recipe.optimizer);
      expect(config.schedule).toMatchObject(recipe.schedule);
      expect(config.augmentation).toMatchObject({ ...recipe.augmentation, scale: null, horizontalFlip: false });
      expect(config.model).toMatchObject({
        backbone: recipe.model.backbone,
        minSize: recipe.model.minSize,
        maxSize: recipe.model.maxSize,
        trainableLayers: recipe.model.trainableLayers,
        weights: 'init-model',
        options: recipe.model.heads,
      });
      expect(config.data).toMatchObject({ train: 'train.json', val: 'val.json' });
    });
  }

  it("the seed configuration takes configs/seed-recipe.yaml's numbers", () => {
    expect(CONFIGURATIONS.seed).toMatchObject({
      epochs: 18,
      batchSize: 4,
      optimizer: { lr: 0.003, nesterov: true },
      schedule: { type: 'step', milestones: [12, 16] },
    });
  });
});
