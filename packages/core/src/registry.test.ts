import { FedcxrError } from '@fedcxr/base';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TORCHVISION_PREPROCESSING } from './model-dir.js';
import { Registry } from './registry.js';

describe('Registry', () => {
  it('builds by name or alias, validating options through the entry schema', () => {
    const registry = new Registry<{ width?: number; [k: string]: unknown }, { width: number; extra: unknown }, string>(
      'widget',
    );
    registry.register('plain', (o) => ({ width: o.width ?? 1, extra: o.extra }), 'no schema');
    registry.register('checked', (o) => ({ width: o.width ?? 1, extra: o.extra }), {
      description: 'with a schema',
      options: z.looseObject({ width: z.number().int().min(1).optional() }),
      weights: { small: 'small.bin' },
      preprocessing: TORCHVISION_PREPROCESSING,
      aliases: ['checked_v1'],
    });
    expect(registry.build('plain', { width: -3 })).toEqual({ width: -3, extra: undefined });
    // The factory gets what the schema parsed; settings the schema does not name pass through.
    expect(registry.build('checked_v1', { width: 4, extra: 'kept' })).toEqual({ width: 4, extra: 'kept' });
    expect(() => registry.build('checked', { width: 0 })).toThrow(/widget checked options[\s\S]*width: /);
    expect(() => registry.build('checked', { width: 0 })).toThrow(FedcxrError);
    expect(() => registry.build('nope', {})).toThrow(/unknown widget "nope"; registered: checked, plain/);

    expect(registry.resolve('checked_v1')).toBe('checked');
    expect(registry.resolve('checked')).toBe('checked');
    expect(registry.resolve('nope')).toBeUndefined();
    expect(registry.has('checked_v1')).toBe(false);
    expect(registry.entry('checked_v1')).toMatchObject({
      name: 'checked',
      weights: { small: 'small.bin' },
      preprocessing: TORCHVISION_PREPROCESSING,
      aliases: ['checked_v1'],
    });
    expect(registry.entry('plain')).toMatchObject({ description: 'no schema', weights: {}, aliases: [] });
    expect(registry.all().map((e) => e.name)).toEqual(['plain', 'checked']);
    expect(registry.describe()).toEqual([
      { name: 'checked', description: 'with a schema', weights: ['small'], aliases: ['checked_v1'] },
      { name: 'plain', description: 'no schema', weights: [], aliases: [] },
    ]);
    // A name or an alias is taken once.
    expect(() => registry.register('checked_v1', () => ({ width: 1, extra: 0 }))).toThrow(/already registered/);
    expect(() => registry.register('other', () => ({ width: 1, extra: 0 }), { aliases: ['plain'] })).toThrow(
      /widget "plain" is already registered/,
    );
  });
});
