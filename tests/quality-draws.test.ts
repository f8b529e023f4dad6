/**
 * bench/quality --paired hands the torchvision side fedcxr's random numbers through a Python port
 * (bench/quality/fedcxr_draws.py). A port that drifts by one draw silently unpairs the runs, so every stream
 * the trainer uses is compared with the TypeScript it copies: stream seeds, draws, permutations (a step's
 * state carried from one to the next, as the RPN then RoI samplers draw), the epoch order and augmentation.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deriveSeed, Rng, rngFor } from '@fedcxr/base';
import { describe, expect, it } from 'vitest';
import { EpochSampler } from '../packages/core/src/train/sampler.js';

const benchDir = fileURLToPath(new URL('../bench/quality/', import.meta.url));
const venvPython = `${process.env.REFERENCE_VENV ?? '/tmp/fedcxr-reference-venv'}/bin/python`;

/** A Python with numpy (the port's one dependency), or why there is none. */
function findPython(): { python: string } | { missing: string } {
  for (const python of [venvPython, 'python3']) {
    if (python.includes('/') && !existsSync(python)) continue;
    try {
      execFileSync(python, ['-c', 'import numpy'], { stdio: 'ignore' });
      return { python };
    } catch {}
  }
  return { missing: `no Python with numpy (tried ${venvPython} and python3)` };
}

const found = findPython();
if ('missing' in found) console.warn(`skipping the fedcxr_draws.py port check: ${found.missing}`);

/** Evaluates a Python expression over the port (module `d`) and returns its JSON. */
function python(expression: string): unknown {
  if (!('python' in found)) throw new Error('no python');
  const script = `import json, sys; sys.path.insert(0, ${JSON.stringify(benchDir)}); import fedcxr_draws as d; print(json.dumps(${expression}))`;
  return JSON.parse(execFileSync(found.python, ['-c', script], { encoding: 'utf8' }));
}

const hasBoxes = Array.from({ length: 57 }, (_, i) => (i * 7919) % 5 < 2);

describe.skipIf(!('python' in found))("bench/quality's Python port of fedcxr's draws", () => {
  it('derives the same stream seeds', () => {
    const keys: [number, ...(string | number)[]][] = [
      [0, 'sampler', 0],
      [3, 'augment', 5, 401],
      [4294967295, 'detector', 17, 105],
      [12345, 'validation', 2, 0],
    ];
    const expected = keys.map(([seed, ...rest]) => deriveSeed(seed, ...rest));
    const args = keys.map((k) => k.map((v) => JSON.stringify(v)).join(', '));
    expect(python(`[${args.map((a) => `d.derive_seed(${a})`).join(', ')}]`)).toEqual(expected);
  });

  it("draws the same numbers and permutations, the step's state carried across calls", () => {
    const state = deriveSeed(2, 'detector', 3, 44);
    const rng = new Rng(state);
    const expected = {
      first: [rng.next(), rng.next()],
      small: Array.from(rng.permutation(7)),
      large: Array.from(rng.permutation(16368)),
      after: rng.next(),
    };
    const actual = python(
      `(lambda r: {"first": [r.next(), r.next()], "small": r.permutation(7), "large": r.permutation(16368), "after": r.next()})(d.FedcxrRng(${state}))`,
    );
    expect(actual).toEqual(expected);
  });

  it("visits an epoch's images in EpochSampler's order, and augments with the same draws", () => {
    const sampler = new EpochSampler(
      { imageClasses: hasBoxes.map((b) => (b ? [1] : [])) },
      { repeatFactorThreshold: null, negativesRatio: null, shuffle: true },
      9,
    );
    const mask = JSON.stringify(hasBoxes).replaceAll('true', 'True').replaceAll('false', 'False');
    expect(python(`[d.epoch_order(${mask}, 9, e) for e in range(3)]`)).toEqual(
      [0, 1, 2].map((e) => sampler.epochIndices(e)),
    );
    const augment = rngFor(9, 'augment', 2, 13);
    const expected = [augment.uniform(-5, 5), augment.uniform(0.9, 1.1), augment.uniform(0.9, 1.1)];
    expect(
      python('(lambda r: [r.uniform(-5, 5), r.uniform(0.9, 1.1), r.uniform(0.9, 1.1)])(d.augment_rng(9, 2, 13))'),
    ).toEqual(expected);
    expect(python('d.detector_seed(9, 2, 13)')).toBe(deriveSeed(9, 'detector', 2, 13));
  });
});
