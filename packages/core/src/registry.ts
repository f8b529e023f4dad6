import { FedcxrError } from './errors.js';

/**
 * A name → factory table (timm's registry idea): components are registered once by name and built from
 * config, so a config line swaps one for another and a third-party package can add its own.
 */
export class Registry<TOptions, TProduct> {
  private readonly entries = new Map<string, { factory: (options: TOptions) => TProduct; description: string }>();

  constructor(readonly kind: string) {}

  register(name: string, factory: (options: TOptions) => TProduct, description = ''): void {
    if (this.entries.has(name))
      throw new FedcxrError('registry_duplicate', `${this.kind} "${name}" is already registered`);
    this.entries.set(name, { factory, description });
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  build(name: string, options: TOptions): TProduct {
    const entry = this.entries.get(name);
    if (!entry) {
      throw new FedcxrError(
        'registry_unknown',
        `unknown ${this.kind} "${name}"; registered: ${this.list().join(', ') || '(none)'}`,
      );
    }
    return entry.factory(options);
  }

  list(): string[] {
    return [...this.entries.keys()].sort();
  }

  describe(): { name: string; description: string }[] {
    return this.list().map((name) => ({ name, description: this.entries.get(name)?.description ?? '' }));
  }
}
