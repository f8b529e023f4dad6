import { FedcxrError } from '@fedcxr/base';
import { describe, expect, it } from 'vitest';
import { NO_AUGMENTATION, normalizationPreset, parseRecipe, parseTrainConfig } from './config.js';

describe('train config', () => {
  it("defaults to the seed study's recipe", () => {
    const config = parseTrainConfig({ data: { train: 'a.json' } });
    expect(config.optimizer).toMatchObject({
      type: 'sgd',
      lr: 0.003,
      momentum: 0.9,
      nesterov: true,
      weightDecay: 1e-4,
    });
    expect(config.batchSize).toBe(4);
    expect(config.epochs).toBe(18);
    expect(config.model.detector).toBe('faster_rcnn');
    expect(config.augmentation).toMatchObject({ rotationDegrees: 5, horizontalFlip: false, scale: null });
    expect(config.validation.metric).toBe('AP');
    expect(config.schedule.type).toBe('step');
    expect(config.schedule.warmupSteps).toBeGreaterThan(0);
  });

  it('keeps given values and fills the rest of a nested section', () => {
    const config = parseTrainConfig({
      data: { train: 'a.json' },
      optimizer: { lr: 0.01 },
      schedule: { type: 'cosine' },
    });
    expect(config.optimizer.lr).toBe(0.01);
    expect(config.optimizer.momentum).toBe(0.9);
    expect(config.schedule).toMatchObject({ type: 'cosine', warmupSteps: 100 });
  });

  it('names the bad fields', () => {
    let caught: unknown;
    try {
      parseTrainConfig({ data: {}, optimizer: { lr: -1 }, schedule: { type: 'linear' } }, 'train.yaml');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FedcxrError);
    const message = (caught as Error).message;
    expect(message).toMatch(/^train\.yaml: invalid config/);
    expect(message).toMatch(/data\.train: /);
    expect(message).toMatch(/optimizer\.lr: /);
    expect(message).toMatch(/schedule\.type: /);
  });

  it('is the recipe schema: the recipe alone parses to the same defaults as a full config', () => {
    const config = parseTrainConfig({ data: { train: 'a.json' } });
    const recipe = parseRecipe({});
    expect(recipe).toEqual({
      epochs: config.epochs,
      batchSize: config.batchSize,
      optimizer: config.optimizer,
      schedule: config.schedule,
      augmentation: config.augmentation,
      sampler: config.sampler,
    });
    expect(recipe.schedule).toMatchObject({ milestones: [12, 16], gamma: 0.1, warmupEpochs: null });
    expect(recipe.optimizer.clipGradNorm).toBeNull();
  });

  it('reads augmentation: null as no augmentation', () => {
    expect(parseRecipe({ augmentation: null }).augmentation).toEqual(NO_AUGMENTATION);
  });

  it('names unknown and inconsistent recipe fields', () => {
    const message = (value: unknown) => {
      try {
        parseRecipe(value, 'site.yaml');
      } catch (error) {
        expect(error).toBeInstanceOf(FedcxrError);
        return (error as Error).message;
      }
      throw new Error('expected an invalid recipe');
    };
    expect(message({ schedule: { milestone: [3] } })).toMatch(/schedule: Unrecognized key: "milestone"/);
    expect(message({ learningRate: 0.01 })).toMatch(/\(root\): Unrecognized key: "learningRate"/);
    expect(message({ optimizer: { momentum: 0 } })).toMatch(
      /optimizer\.nesterov: Nesterov momentum requires momentum > 0/,
    );
    expect(message({ optimizer: { noDecayPatterns: ['bn', '('] } })).toMatch(/optimizer\.noDecayPatterns\.1: /);
    expect(message({ schedule: { warmupEpochs: -1 } })).toMatch(/schedule\.warmupEpochs: /);
    expect(parseRecipe({ optimizer: { momentum: 0, nesterov: false } }).optimizer.momentum).toBe(0);
  });

  it('types the normalization: a preset name, the old "seed-log" read as "seed", anything else named', () => {
    expect(parseTrainConfig({ data: { train: 'a.json' } }).data.normalization).toBe('seed');
    expect(parseTrainConfig({ data: { train: 'a.json', normalization: 'seed-log' } }).data.normalization).toBe('seed');
    expect(parseTrainConfig({ data: { train: 'a.json', normalization: 'window' } }).data.normalization).toBe('window');
    expect(() => parseTrainConfig({ data: { train: 'a.json', normalization: 'log' } })).toThrow(
      /data\.normalization: /,
    );
    expect(normalizationPreset('scb-log')).toBeUndefined();
    expect(normalizationPreset('seed-log')).toBe('seed');
    expect(normalizationPreset(undefined)).toBeUndefined();
  });
});
