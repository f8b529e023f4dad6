import { describe, expect, it } from 'vitest';
import { FedcxrError } from '../errors.js';
import { parseTrainConfig } from './config.js';

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
});
