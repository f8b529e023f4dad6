import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { combineShares, interpolateAt, SHARE_BYTES, type Share, splitSecret } from './shamir.js';

/** Every k-subset of `items`, in order. */
function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [head, ...rest] = items;
  return [...subsets(rest, k - 1).map((s) => [head, ...s]), ...subsets(rest, k)];
}

describe('Shamir secret sharing over GF(2^521 − 1)', () => {
  const secret = randomBytes(32);

  it('any t of n shares rebuild the secret (every 3-subset of 5, and all 5)', () => {
    const shares = splitSecret(secret, 5, 3);
    expect(shares.map((s) => s.x)).toEqual([1, 2, 3, 4, 5]);
    for (const s of shares) expect(s.y.length).toBe(SHARE_BYTES);
    const triples = subsets(shares, 3);
    expect(triples.length).toBe(10);
    for (const subset of triples) expect(combineShares(subset, 3, 32).equals(secret)).toBe(true);
    expect(combineShares([...shares].reverse(), 3, 32).equals(secret)).toBe(true);
    // Edge thresholds: t = 2 and t = n.
    for (const [n, t] of [
      [2, 2],
      [7, 7],
      [9, 2],
    ]) {
      const s = splitSecret(secret, n, t);
      expect(combineShares(s.slice(n - t), t, 32).equals(secret)).toBe(true);
    }
  });

  it('fewer than t shares: refused, and consistent with any other secret (they carry nothing)', () => {
    const shares = splitSecret(secret, 5, 3);
    const two = shares.slice(0, 2);
    expect(() => combineShares(two, 3, 32)).toThrow(/2 share\(s\) given, the threshold is 3/);
    // Treating two shares as if t were 2 gives something else, not the secret.
    expect(() => combineShares(two, 2, 32)).toThrow(/corrupt/);
    // For any other secret there is a third share that completes the two into it: t−1 shares fit every secret.
    const other = randomBytes(32);
    const fake = completeTo(two, other, 3);
    expect(combineShares([...two, fake], 3, 32).equals(other)).toBe(true);
    expect(combineShares([...two, shares[2]], 3, 32).equals(secret)).toBe(true);
  });

  it('two sharings of one secret use fresh randomness', () => {
    const a = splitSecret(secret, 4, 3);
    const b = splitSecret(secret, 4, 3);
    for (let i = 0; i < 4; i++) expect(a[i].y.equals(b[i].y)).toBe(false);
  });

  it('detects corrupted shares: integrity tag with t shares, off the polynomial with more than t', () => {
    const shares = splitSecret(secret, 5, 3);
    const flipped = shares.map((s) => ({ x: s.x, y: Buffer.from(s.y) }));
    flipped[1].y[40] ^= 0x10;
    expect(() => combineShares(flipped.slice(0, 3), 3, 32)).toThrow(/integrity tag: a share is corrupt/);
    // Every single-bit flip of a share used is caught (a structured change, not a random one).
    for (let bit = 0; bit < SHARE_BYTES * 8; bit += 7) {
      const one = shares.slice(0, 3).map((s) => ({ x: s.x, y: Buffer.from(s.y) }));
      one[bit % 3].y[bit >> 3] ^= 1 << (bit & 7);
      expect(() => combineShares(one, 3, 32)).toThrow(/corrupt|not a field element/);
    }
    expect(() => combineShares(flipped, 3, 32)).toThrow(/does not lie on the polynomial/);
    // A corrupt share left out: the others still agree.
    expect(combineShares([flipped[0], ...flipped.slice(2)], 3, 32).equals(secret)).toBe(true);
    const notField = { x: 2, y: Buffer.alloc(SHARE_BYTES, 0xff) };
    expect(() => combineShares([shares[0], notField, shares[2]], 3, 32)).toThrow(/not a field element/);
    expect(() => combineShares([shares[0], shares[0], shares[2]], 3, 32)).toThrow(/two shares for evaluation point 1/);
  });

  it('validates its arguments', () => {
    expect(() => splitSecret(secret, 5, 1)).toThrow(/threshold must be an integer in 2..5/);
    expect(() => splitSecret(secret, 3, 4)).toThrow(/threshold must be an integer in 2..3/);
    expect(() => splitSecret(new Uint8Array(50), 3, 2)).toThrow(/1..49 bytes/);
    expect(() => combineShares(splitSecret(secret, 3, 2), 2, 0)).toThrow(/secret length/);
  });
});

/** The share at holder point x that, with `shares` (t−1 of them), makes a polynomial whose value at 0 is `secret`. */
function completeTo(shares: readonly Share[], secret: Uint8Array, x: number): Share {
  // Points: the t−1 shares and (0, secret); a polynomial of degree t−1 goes through them. Lagrange needs holder
  // points ≥ 1, so evaluate g(u) = f(u − 1) on points shifted by one, at x + 1.
  // The shared value is secret ‖ 16 bytes of SHA-256('fedcxr-shamir/v1' ‖ secret) (see shamir.ts).
  const tag = createHash('sha256').update('fedcxr-shamir/v1').update(secret).digest().subarray(0, 16);
  const value = Buffer.concat([secret, tag]);
  const shifted = [
    { x: 1, y: Buffer.concat([Buffer.alloc(SHARE_BYTES - value.length), value]) },
    ...shares.map((s) => ({ x: s.x + 1, y: s.y })),
  ];
  return { x, y: interpolateAt(shifted, x + 1) };
}
