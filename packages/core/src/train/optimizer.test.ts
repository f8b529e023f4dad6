import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { SgdOptimizer } from './optimizer.js';

interface Reference {
  initial: Record<'decayed' | 'plain', number[]>;
  steps: { lr: number; grads: Record<'decayed' | 'plain', number[]>; after: Record<'decayed' | 'plain', number[]> }[];
}

const reference = JSON.parse(
  readFileSync(
    new URL('../../../../tools/reference/fixtures/train/sgd_nesterov_reference.json', import.meta.url),
    'utf8',
  ),
) as Reference;

describe('SgdOptimizer', () => {
  it('matches a hand-computed Nesterov step with weight decay', async () => {
    await tf.setBackend('cpu');
    const p = tf.variable(tf.tensor1d([1, -2]), true, 'hand_p');
    const opt = new SgdOptimizer({ momentum: 0.9, nesterov: true, weightDecay: 0.5 });
    // step 1: g = [0.5, 1] + 0.5·[1, -2] = [1, 0]; b = g; g' = g + 0.9·b = [1.9, 0]; p = [1, -2] - 0.1·g' = [0.81, -2]
    opt.applyGradients([p], { hand_p: tf.tensor1d([0.5, 1]) }, 0.1);
    expect(Array.from(await p.data())).toEqual([expect.closeTo(0.81, 6), expect.closeTo(-2, 6)]);
    // step 2: g = [0, 0] + 0.5·[0.81, -2] = [0.405, -1]; b = 0.9·[1, 0] + g = [1.305, -1];
    // g' = g + 0.9·b = [1.5795, -1.9]; p = p - 0.1·g' = [0.65205, -1.81]
    opt.applyGradients([p], { hand_p: tf.tensor1d([0, 0]) }, 0.1);
    expect(Array.from(await p.data())).toEqual([expect.closeTo(0.65205, 6), expect.closeTo(-1.81, 6)]);
    expect(opt.iterations).toBe(2);
    opt.dispose();
    p.dispose();
  });

  it('matches torch.optim.SGD(nesterov=True, weight_decay) step by step, with a no-decay group and lr changes', async () => {
    await tf.setBackend('cpu');
    const decayed = tf.variable(tf.tensor(reference.initial.decayed, [2, 3]), true, 'ref_decayed');
    const plain = tf.variable(tf.tensor(reference.initial.plain, [4]), true, 'ref_plain');
    const opt = new SgdOptimizer({
      momentum: 0.9,
      nesterov: true,
      weightDecay: 0.1,
      noDecay: (n) => n === 'ref_plain',
    });
    for (const step of reference.steps) {
      const grads = {
        ref_decayed: tf.tensor(step.grads.decayed, [2, 3]),
        ref_plain: tf.tensor(step.grads.plain, [4]),
      };
      opt.applyGradients([decayed, plain], grads, step.lr);
      for (const g of Object.values(grads)) g.dispose();
      const got = [...(await decayed.data()), ...(await plain.data())];
      const want = [...step.after.decayed, ...step.after.plain];
      for (const [i, value] of got.entries()) expect(value).toBeCloseTo(want[i], 5);
    }
    opt.dispose();
    decayed.dispose();
    plain.dispose();
  });

  it('saves and restores its momentum so the next step is identical', async () => {
    await tf.setBackend('cpu');
    const run = async (restore: boolean) => {
      const p = tf.variable(tf.tensor1d([0.3, 0.7, -1]), true);
      let opt = new SgdOptimizer({ momentum: 0.9, nesterov: true, weightDecay: 0.01 });
      opt.applyGradients([p], { [p.name]: tf.tensor1d([1, 2, 3]) }, 0.1, ['w']);
      if (restore) {
        const slots = await opt.getSlots();
        opt.dispose();
        opt = new SgdOptimizer({ momentum: 0.9, nesterov: true, weightDecay: 0.01 });
        opt.setSlots(slots);
        opt.checkSlots([p], ['w']);
      }
      opt.applyGradients([p], { [p.name]: tf.tensor1d([-1, 0.5, 0]) }, 0.1, ['w']);
      const out = Array.from(await p.data());
      opt.dispose();
      p.dispose();
      return out;
    };
    expect(await run(true)).toEqual(await run(false));
  });
});
