/**
 * The aggregation strategies by name: `round.aggregation` names one, `round.aggregationOptions` are its
 * options. The four built in are registered here; a package or a test adds its own with `register`.
 */
import { FedcxrError } from '@fedcxr/core';
import type { z } from 'zod';
import { fedavg } from './fedavg.js';
import { fedprox } from './fedprox.js';
import { median } from './median.js';
import type { Strategy, StrategyRoundFields } from './strategy.js';
import { trimmedMean } from './trimmed-mean.js';

/** A strategy with its options parsed (defaults applied). */
export interface ResolvedStrategy {
  strategy: Strategy;
  options: unknown;
}

export class StrategyRegistry {
  private readonly entries = new Map<string, Strategy>();

  /** Adds a strategy; returns a function that removes it again (for tests). */
  register<Options>(strategy: Strategy<Options>): () => void {
    if (this.entries.has(strategy.name))
      throw new FedcxrError('registry_duplicate', `aggregation strategy "${strategy.name}" is already registered`);
    this.entries.set(strategy.name, strategy as Strategy);
    return () => {
      if (this.entries.get(strategy.name) === strategy) this.entries.delete(strategy.name);
    };
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  list(): string[] {
    return [...this.entries.keys()].sort();
  }

  describe(): { name: string; description: string; linear: boolean }[] {
    return this.list().map((name) => {
      const { description, linear } = this.get(name);
      return { name, description, linear };
    });
  }

  /** The strategy called `name`; an unknown name is an error listing the registered ones. */
  get(name: string): Strategy {
    const strategy = this.entries.get(name);
    if (!strategy) throw new FedcxrError('registry_unknown', this.unknown(name));
    return strategy;
  }

  unknown(name: string): string {
    return `unknown aggregation strategy "${name}"; registered: ${this.list().join(', ') || '(none)'}`;
  }

  /** Validates a strategy's options: its defaults from the round's fields, overridden by `options`. */
  parseOptions(
    strategy: Strategy,
    round: StrategyRoundFields,
    options: Record<string, unknown>,
  ): z.ZodSafeParseResult<unknown> {
    return strategy.options.safeParse({ ...strategy.defaults?.(round), ...options });
  }

  /** The strategy and its parsed options for a validated round config. */
  resolve(round: StrategyRoundFields & { aggregation: string; aggregationOptions: Record<string, unknown> }) {
    const strategy = this.get(round.aggregation);
    const parsed = this.parseOptions(strategy, round, round.aggregationOptions);
    if (!parsed.success)
      throw new FedcxrError(
        'invalid_config',
        `round.aggregationOptions: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      );
    return { strategy, options: parsed.data } satisfies ResolvedStrategy;
  }
}

export const strategies = new StrategyRegistry();
const builtIn: Strategy[] = [fedavg, fedprox, median, trimmedMean];
for (const strategy of builtIn) strategies.register(strategy);
