/**
 * Optional differential privacy, applied by each site to its own update before it leaves (local DP at
 * the site level): clip the whole delta to L2 norm C, then add N(0, (z·C)²) noise to every coordinate.
 *
 * Guarantee: the sequence of updates one site sends is (ε, δ)-DP with respect to replacing that site's
 * ENTIRE local dataset by any other (so also any one patient). Replacing the data moves a clipped update by
 * at most 2C, so each round is a Gaussian mechanism with sensitivity 2C and std z·C; its Rényi DP is
 * ε_α = α·(2C)²/(2(zC)²) = 2α/z², composed over T rounds and converted with ε = ε_RDP(α) + ln(1/δ)/(α−1),
 * minimized over α (Mironov 2017, Prop. 3). No subsampling amplification is claimed. The coordinator is
 * not trusted for this guarantee; it holds whatever the coordinator does with the updates.
 */
import { getRandomValues } from 'node:crypto';
import type { NamedTensors } from '@fedcxr/core';
import { gaussian } from './tabular-trainer.js';

/** Uniform (0,1) draws from the OS CSPRNG: DP noise must not be predictable by the coordinator. */
function secureUniform(): () => number {
  const pool = new Uint32Array(4096);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      getRandomValues(pool);
      next = 0;
    }
    return (pool[next++] + 0.5) / 4294967296;
  };
}

export interface DpApplied {
  /** L2 norm before clipping. */
  normBefore: number;
  clipped: boolean;
}

/** Clips `delta` in place to L2 norm ≤ clipNorm and adds Gaussian noise with std noiseMultiplier·clipNorm. */
export function clipAndNoise(delta: NamedTensors, clipNorm: number, noiseMultiplier: number): DpApplied {
  let sum = 0;
  for (const t of delta.values()) for (let i = 0; i < t.data.length; i++) sum += t.data[i] * t.data[i];
  const normBefore = Math.sqrt(sum);
  const factor = normBefore > clipNorm ? clipNorm / normBefore : 1;
  const std = noiseMultiplier * clipNorm;
  const random = secureUniform();
  for (const t of delta.values()) {
    const data = t.data as Float32Array;
    for (let i = 0; i < data.length; i++) data[i] = data[i] * factor + (std > 0 ? std * gaussian(random) : 0);
  }
  return { normBefore, clipped: factor < 1 };
}

/** ε for δ after `rounds` releases of the site-level Gaussian mechanism above (noise multiplier z). */
export function gaussianEpsilon(noiseMultiplier: number, rounds: number, delta: number): number {
  if (noiseMultiplier <= 0) return Number.POSITIVE_INFINITY;
  if (rounds <= 0) return 0;
  let best = Number.POSITIVE_INFINITY;
  for (let alpha = 1.01; alpha <= 512; alpha *= 1.01) {
    const rdp = (rounds * 2 * alpha) / (noiseMultiplier * noiseMultiplier);
    best = Math.min(best, rdp + Math.log(1 / delta) / (alpha - 1));
  }
  return best;
}
