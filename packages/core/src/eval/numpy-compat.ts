/**
 * The few numpy routines pycocotools and MONAI lean on, reproduced operation for operation so that our
 * metrics come out bit-identical to theirs (float addition is not associative: numpy's `sum` and `mean`
 * add pairwise in blocks of 8, not left to right).
 */

/** `np.add.reduce` on a contiguous float64 array: numpy's pairwise summation (blocks of 128, 8 lanes). */
export function pairwiseSum(values: ArrayLike<number>, start = 0, length = values.length - start): number {
  if (length < 8) {
    let sum = 0;
    for (let i = 0; i < length; i++) sum += values[start + i];
    return sum;
  }
  if (length <= 128) {
    let r0 = values[start];
    let r1 = values[start + 1];
    let r2 = values[start + 2];
    let r3 = values[start + 3];
    let r4 = values[start + 4];
    let r5 = values[start + 5];
    let r6 = values[start + 6];
    let r7 = values[start + 7];
    let i = 8;
    const unrolled = length - (length % 8);
    for (; i < unrolled; i += 8) {
      const at = start + i;
      r0 += values[at];
      r1 += values[at + 1];
      r2 += values[at + 2];
      r3 += values[at + 3];
      r4 += values[at + 4];
      r5 += values[at + 5];
      r6 += values[at + 6];
      r7 += values[at + 7];
    }
    let sum = r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7));
    for (; i < length; i++) sum += values[start + i];
    return sum;
  }
  let half = Math.floor(length / 2);
  half -= half % 8;
  return pairwiseSum(values, start, half) + pairwiseSum(values, start + half, length - half);
}

/** `np.mean` of a 1-D float64 array. */
export function numpyMean(values: ArrayLike<number>): number {
  return pairwiseSum(values) / values.length;
}

/** `np.linspace(start, stop, num, endpoint=True)`: `i * step + start`, with the last value set to `stop`. */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(i * step + start);
  out[num - 1] = stop;
  return out;
}

/** `np.searchsorted(sorted, value, side='left')` over `sorted[0..length)`. */
export function searchSortedLeft(sorted: ArrayLike<number>, length: number, value: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `np.interp(x, xp, fp)` with default left/right (the end values), xp non-decreasing. */
export function interp(x: number, xp: ArrayLike<number>, fp: ArrayLike<number>): number {
  const n = xp.length;
  if (n === 0) throw new RangeError('interp: xp is empty');
  if (n === 1) return fp[0];
  const last = n - 1;
  if (x > xp[last]) return fp[last];
  if (x < xp[0]) return fp[0];
  // Largest j with xp[j] <= x (numpy's binary_search_with_guess result for sorted xp).
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x >= xp[mid]) lo = mid + 1;
    else hi = mid;
  }
  const j = lo - 1;
  if (j === last) return fp[last];
  if (xp[j] === x) return fp[j];
  const slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  let value = slope * (x - xp[j]) + fp[j];
  if (Number.isNaN(value)) {
    value = slope * (x - xp[j + 1]) + fp[j + 1];
    if (Number.isNaN(value) && fp[j] === fp[j + 1]) value = fp[j];
  }
  return value;
}
