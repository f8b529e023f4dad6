import { FedcxrError } from '@fedcxr/base';
import type { z } from 'zod';
import { parseConfig } from './config.js';
import type { Preprocessing } from './model-dir.js';

/**
 * What an entry declares besides its factory (timm's `pretrained_cfg`, torchvision's `Weights` enums):
 * the schema of its options, its known weights and the preprocessing it expects.
 */
export interface RegistryEntryInfo<TWeights = unknown> {
  description?: string;
  /**
   * The options the factory takes, as a zod schema: `build` validates them through it (a bad option fails
   * naming the field) and hands the factory what it parsed. Loose object schemas let settings the schema
   * does not name pass through.
   */
  options?: z.ZodType;
  /** Known weights by name (e.g. torchvision's `ResNet50_Weights.IMAGENET1K_V1` as `resnet50`). */
  weights?: Readonly<Record<string, TWeights>>;
  /** The input preprocessing the entry expects by default. */
  preprocessing?: Preprocessing;
  /** Other names that resolve to this entry (torchvision's builder names, older spellings). */
  aliases?: readonly string[];
}

/** One registered entry, as `entry` and `entries` describe it. */
export interface RegistryEntry<TWeights = unknown> {
  name: string;
  description: string;
  options?: z.ZodType;
  weights: Readonly<Record<string, TWeights>>;
  preprocessing?: Preprocessing;
  aliases: readonly string[];
}

/**
 * A name → factory table (timm's registry idea): components are registered once by name and built from
 * config, so a config line swaps one for another and a third-party package can add its own. Entries may
 * carry an options schema, known weights and preprocessing (RegistryEntryInfo).
 */
export class Registry<TOptions, TProduct, TWeights = unknown> {
  private readonly entries = new Map<
    string,
    { factory: (options: TOptions) => TProduct; info: RegistryEntry<TWeights> }
  >();
  private readonly aliases = new Map<string, string>();

  constructor(readonly kind: string) {}

  /** Registers `name`; the third argument is a description or the entry's info. */
  register(
    name: string,
    factory: (options: TOptions) => TProduct,
    info: string | RegistryEntryInfo<TWeights> = '',
  ): void {
    const given = typeof info === 'string' ? { description: info } : info;
    const aliases = given.aliases ?? [];
    for (const taken of [name, ...aliases]) {
      if (this.entries.has(taken) || this.aliases.has(taken)) {
        throw new FedcxrError('registry_duplicate', `${this.kind} "${taken}" is already registered`);
      }
    }
    this.entries.set(name, {
      factory,
      info: {
        name,
        description: given.description ?? '',
        options: given.options,
        weights: given.weights ?? {},
        preprocessing: given.preprocessing,
        aliases,
      },
    });
    for (const alias of aliases) this.aliases.set(alias, name);
  }

  /** Whether `name` is registered (its own name, not an alias). */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The registered name `name` stands for (itself or through an alias), or undefined. */
  resolve(name: string): string | undefined {
    return this.entries.has(name) ? name : this.aliases.get(name);
  }

  /** Builds `name` (or an alias of it), its options validated by the entry's schema when it has one. */
  build(name: string, options: TOptions): TProduct {
    const entry = this.entries.get(this.resolve(name) ?? name);
    if (!entry) {
      throw new FedcxrError(
        'registry_unknown',
        `unknown ${this.kind} "${name}"; registered: ${this.list().join(', ') || '(none)'}`,
      );
    }
    const schema = entry.info.options;
    const parsed = schema
      ? (parseConfig(schema, options, `${this.kind} ${entry.info.name} options`) as TOptions)
      : options;
    return entry.factory(parsed);
  }

  /** The entry `name` (or an alias) names: its description, schema, known weights, preprocessing. */
  entry(name: string): RegistryEntry<TWeights> {
    const entry = this.entries.get(this.resolve(name) ?? name);
    if (!entry) throw new FedcxrError('registry_unknown', `unknown ${this.kind} "${name}"`);
    return entry.info;
  }

  /** Every entry, in registration order. */
  all(): RegistryEntry<TWeights>[] {
    return [...this.entries.values()].map((e) => e.info);
  }

  list(): string[] {
    return [...this.entries.keys()].sort();
  }

  describe(): { name: string; description: string; weights: string[]; aliases: string[] }[] {
    return this.list().map((name) => {
      const info = this.entry(name);
      return { name, description: info.description, weights: Object.keys(info.weights), aliases: [...info.aliases] };
    });
  }
}
