import { parseConfig } from '@fedcxr/core';
import { createTabularModel } from '@fedcxr/federated';
import { afterAll, describe, expect, it } from 'vitest';
import { type CoordinatorConfigInput, coordinatorConfigSchema } from './config.js';
import { Coordinator } from './coordinator.js';
import { coordinatorConfig, MODEL, tempDir } from './testing.js';

const dir = tempDir('fedcxr-config-');
afterAll(() => dir.remove());

const parse = (round: CoordinatorConfigInput['round']) =>
  parseConfig(coordinatorConfigSchema, coordinatorConfig(dir.path, ['site-1', 'site-2'], round), 'coordinator.yaml');

describe('coordinator config: the aggregation strategy', () => {
  it('names a registered strategy; an unknown one is refused, listing the registered ones', () => {
    expect(parse({}).round.aggregation).toBe('fedavg');
    for (const name of ['fedavg', 'fedprox', 'median', 'trimmed-mean'])
      expect(parse({ aggregation: name, mu: 0.1 }).round.aggregation).toBe(name);
    expect(() => parse({ aggregation: 'krum' })).toThrow(
      /round\.aggregation: unknown aggregation strategy "krum"; registered: fedavg, fedprox, median, trimmed-mean/,
    );
  });

  it("validates the strategy's options, with defaults from the round's own fields", () => {
    expect(() => parse({ aggregation: 'trimmed-mean', aggregationOptions: { trimFraction: 0.6 } })).toThrow(
      /round\.aggregationOptions\.trimFraction: trimmed-mean: /,
    );
    expect(() => parse({ aggregation: 'median', aggregationOptions: { trimFraction: 0.1 } })).toThrow(
      /round\.aggregationOptions: median: .*trimFraction/,
    );
    // FedProx needs its μ: as its own option, or the round's.
    expect(() => parse({ aggregation: 'fedprox' })).toThrow(
      /round\.aggregationOptions\.mu: fedprox: FedProx needs its proximal coefficient μ > 0/,
    );
    expect(parse({ aggregation: 'fedprox', mu: 0.01 }).round.aggregation).toBe('fedprox');
    expect(parse({ aggregation: 'fedprox', aggregationOptions: { mu: 0.5 } }).round.aggregationOptions).toEqual({
      mu: 0.5,
    });
  });

  it('the FedProx strategy sends its μ in the plan', async () => {
    const coordinator = new Coordinator(
      coordinatorConfig(tempDirIn('fedprox'), ['site-1'], { aggregation: 'fedprox', aggregationOptions: { mu: 0.25 } }),
      { initialModel: createTabularModel(MODEL, 1) },
    );
    await coordinator.start();
    try {
      await coordinator.startRound();
      const opened = coordinator.snapshot().audit.find((e) => e.event === 'round_opened');
      expect(opened).toMatchObject({ mu: 0.25, aggregation: 'fedprox' });
    } finally {
      await coordinator.close();
    }
  });

  it('secure aggregation admits only linear strategies: median or trimmed mean with it is refused at parse time', () => {
    for (const aggregation of ['median', 'trimmed-mean']) {
      let message = '';
      try {
        parse({ aggregation, secureAggregation: true });
      } catch (error) {
        message = (error as Error).message;
      }
      // One clear message naming both fields (before the fix the round silently took a weighted mean).
      expect(message).toMatch(
        new RegExp(
          `round\\.aggregation: round\\.secureAggregation admits only linear strategies, and round\\.aggregation "${aggregation}" is not linear`,
        ),
      );
      expect(message).toMatch(/use fedavg or fedprox, or set round\.secureAggregation: false/);
      // The coordinator parses its config the same way: it never starts with the combination.
      expect(
        () =>
          new Coordinator(coordinatorConfig(dir.path, ['site-1', 'site-2'], { aggregation, secureAggregation: true }), {
            initialModel: createTabularModel(MODEL, 1),
          }),
      ).toThrow(/admits only linear strategies/);
    }
    expect(parse({ aggregation: 'fedavg', secureAggregation: true }).round.secureAggregation).toBe(true);
    expect(parse({ aggregation: 'fedprox', mu: 0.1, secureAggregation: true }).round.aggregation).toBe('fedprox');
  });
});

function tempDirIn(name: string): string {
  return `${dir.path}/${name}`;
}
