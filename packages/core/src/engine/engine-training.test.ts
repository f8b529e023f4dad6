/**
 * A fresh engine (its own test file, so no backend was chosen before) asked to train: `auto` must not pick
 * webgpu, whose tfjs backend cannot read tensors synchronously in Node (Faster R-CNN's losses need to).
 */
import { describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { initEngine } from './engine.js';

describe('engine for training', () => {
  it('auto never picks webgpu and says why', async () => {
    const info = await initEngine({ backend: 'auto' }, 'training');
    expect(info.backend).not.toBe('webgpu');
    expect(tf.getBackend()).toBe(info.backend);
    expect(info.reason).toMatch(/passed over .*webgpu: tfjs' webgpu backend cannot read tensors synchronously/);
  });
});
