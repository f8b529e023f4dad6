/**
 * Bounded influence of one site on a round (see the federated README, "What the coordinator defends
 * against"). Three independent bounds, all computed by the coordinator, none taken from the site's word:
 *
 *  1. Weight: FedAvg weights by example counts, but a count is the site's claim. The weight used is
 *     min(claim, bound) where the bound is the count declared for the site in the config, or, without one,
 *     the weight the site was enrolled with (its first accepted round) grown by at most `growth` per round.
 *  2. Share: no site holds more than `maxShare` of a round's total weight (water-filling: the excess of a
 *     capped site goes to the others in proportion). With n · maxShare < 1 every site gets 1/n.
 *  3. Norm: an update whose L2 norm exceeds `clipMultiple` × the round's (lower) median norm is scaled down
 *     to that norm, so a few sites cannot blow the round up; `normBound` stays the absolute ceiling (refused).
 */

export interface WeightBound {
  /** The count declared for the site in the coordinator's config. */
  declared?: number;
  /** The weight the site was last aggregated with (fixed at enrolment, then grown by ≤ `growth` a round). */
  enrolled?: number;
  growth: number;
}

export interface AllowedWeight {
  weight: number;
  basis: 'declared' | 'enrolled' | 'enrolment';
  /** The claim was more than the coordinator allows. */
  limited: boolean;
}

export function allowedWeight(claimed: number, bound: WeightBound): AllowedWeight {
  if (bound.declared !== undefined)
    return { weight: Math.min(claimed, bound.declared), basis: 'declared', limited: claimed > bound.declared };
  if (bound.enrolled !== undefined) {
    const max = Math.max(1, Math.floor(bound.enrolled * bound.growth));
    return { weight: Math.min(claimed, max), basis: 'enrolled', limited: claimed > max };
  }
  return { weight: claimed, basis: 'enrolment', limited: false };
}

/** Normalised shares with no share above `maxShare` (water-filling); equal shares when that is impossible. */
export function cappedShares(weights: readonly number[], maxShare: number): number[] {
  const n = weights.length;
  if (n === 0) return [];
  if (n * maxShare <= 1 || weights.every((w) => !(w > 0))) return weights.map(() => 1 / n);
  const shares = new Array<number>(n).fill(0);
  const capped = new Array<boolean>(n).fill(false);
  for (;;) {
    const free = weights.reduce((s, w, i) => (capped[i] ? s : s + w), 0);
    const left = 1 - capped.filter(Boolean).length * maxShare;
    let changed = false;
    for (let i = 0; i < n; i++) {
      if (capped[i]) continue;
      shares[i] = free > 0 ? (weights[i] / free) * left : left / capped.filter((c) => !c).length;
      if (shares[i] > maxShare + 1e-12) {
        capped[i] = true;
        shares[i] = maxShare;
        changed = true;
      }
    }
    if (!changed) return shares;
  }
}

/** The lower median (the ⌈n/2⌉-th smallest): with n = 2 it is the smaller norm, so one site cannot raise it. */
export function lowerMedian(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export interface ClipDecision {
  factor: number;
  clipped: boolean;
}

/** Per-update scale factors: min(1, clipMultiple · median / norm). */
export function clipFactors(norms: readonly number[], clipMultiple: number | null): ClipDecision[] {
  if (clipMultiple === null || norms.length === 0) return norms.map(() => ({ factor: 1, clipped: false }));
  const limit = clipMultiple * lowerMedian(norms);
  return norms.map((norm) =>
    norm > limit && norm > 0 ? { factor: limit / norm, clipped: true } : { factor: 1, clipped: false },
  );
}
