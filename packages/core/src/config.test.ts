import { FedcxrError } from '@fedcxr/base';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseConfig } from './config.js';

describe('parseConfig', () => {
  const schema = z.object({
    engine: z.object({ backend: z.enum(['auto', 'cpu']) }),
    epochs: z.number().int().positive(),
  });

  it('returns the parsed value', () => {
    expect(parseConfig(schema, { engine: { backend: 'cpu' }, epochs: 3 })).toEqual({
      engine: { backend: 'cpu' },
      epochs: 3,
    });
  });

  it('names each bad field and the problem', () => {
    let caught: unknown;
    try {
      parseConfig(schema, { engine: { backend: 'tpu' }, epochs: -1 }, 'train.yaml');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FedcxrError);
    const message = (caught as FedcxrError).message;
    expect(message).toMatch(/^train\.yaml: invalid config/);
    expect(message).toMatch(/engine\.backend: /);
    expect(message).toMatch(/epochs: /);
  });
});
