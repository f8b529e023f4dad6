import { describe, expect, it } from 'vitest';
import { l2Norm, subtractTensors } from './codec.js';
import { makeSyntheticRows } from './data.js';
import { gaussianEpsilon } from './dp.js';
import { createTabularModel, evaluateTabular, TabularTrainer } from './tabular-trainer.js';

const options = { features: 6, classes: 3, hidden: 4 };

describe('TabularTrainer (tfjs)', () => {
  const data = makeSyntheticRows({ rows: 300, ...options, seed: 3, separation: 3 });
  const trainer = new TabularTrainer(options, data, data, { learningRate: 0.3, batchSize: 16 });
  const global = createTabularModel(options, 5);

  it('learns: local training lowers the loss and raises accuracy', async () => {
    const before = evaluateTabular(options, global, data);
    const result = await trainer.train(global, { round: 1, epochs: 5, mu: 0, seed: 1 });
    const after = evaluateTabular(options, result.weights!, data);
    expect(after.metrics.loss).toBeLessThan(before.metrics.loss * 0.6);
    expect(after.metrics.accuracy).toBeGreaterThan(0.85);
    expect(result.numExamples).toBe(300);
  });

  it("applies FedProx's proximal term: larger μ keeps the local model nearer the global one", async () => {
    const drift = async (mu: number) =>
      l2Norm(
        subtractTensors((await trainer.train(global, { round: 1, epochs: 3, mu, seed: 1 })).weights!, global).values(),
      );
    // lr·μ must stay < 2 for the proximal pull to be stable under plain SGD.
    const [free, prox, strong] = [await drift(0), await drift(0.3), await drift(3)];
    expect(prox).toBeLessThan(free * 0.9);
    expect(strong).toBeLessThan(prox * 0.7);
  });

  it('stops between steps when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(trainer.train(global, { round: 1, epochs: 1, mu: 0, seed: 1 }, controller.signal)).rejects.toThrow(
      /aborted/,
    );
  });
});

describe('DP accountant', () => {
  it('ε grows with rounds, shrinks with noise, and matches the closed form for one round', () => {
    expect(gaussianEpsilon(2, 10, 1e-5)).toBeGreaterThan(gaussianEpsilon(2, 1, 1e-5));
    expect(gaussianEpsilon(4, 10, 1e-5)).toBeLessThan(gaussianEpsilon(2, 10, 1e-5));
    // One Gaussian release, RDP 2α/z²: min over α of 2α/z² + ln(1/δ)/(α−1); analytic optimum at α = 1 + z·sqrt(ln(1/δ)/2).
    const z = 3;
    const L = Math.log(1e5);
    const alpha = 1 + z * Math.sqrt(L / 2);
    const analytic = (2 * alpha) / (z * z) + L / (alpha - 1);
    expect(gaussianEpsilon(z, 1, 1e-5)).toBeCloseTo(analytic, 2);
    expect(gaussianEpsilon(0, 1, 1e-5)).toBe(Number.POSITIVE_INFINITY);
  });
});
