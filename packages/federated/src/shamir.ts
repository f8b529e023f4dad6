/**
 * t-of-n Shamir secret sharing over the prime field GF(p), p = 2^521 − 1 (a Mersenne prime), for the
 * 32-byte secrets of secure aggregation (self-mask seeds, X25519 private keys). The shared value is the
 * big-endian integer of secret ‖ tag (tag = 16 bytes of SHA-256 of the secret; ≤ 65 bytes in all, so < p);
 * the dealer draws a₁…a_{t−1} uniformly from GF(p) and hands holder x (x = 1…n) the share
 * f(x) = v + a₁x + … + a_{t−1}x^{t−1}. Any t shares give v by Lagrange interpolation at 0; any t−1 shares are
 * uniformly distributed whatever the secret is (every secret is consistent with them).
 *
 * Corruption: an altered share among those used changes v; the tag then no longer matches the secret
 * (a holder would have to predict SHA-256 of a secret it does not know), so `combineShares` reports it, and
 * with more than t shares it also checks that all lie on one polynomial of degree < t. Not covered: a
 * dealer handing out shares of two different polynomials (no verifiable secret sharing here).
 */
import { createHash, randomBytes } from 'node:crypto';
import { FedcxrError } from '@fedcxr/core';

const P = (1n << 521n) - 1n;
/** Bytes of one share value (⌈521/8⌉). */
export const SHARE_BYTES = 66;
const TAG_BYTES = 16;
const MAX_SECRET_BYTES = SHARE_BYTES - 1 - TAG_BYTES;
const MAX_HOLDERS = 1_000_000;

export interface Share {
  /** The holder's evaluation point, 1…n. */
  x: number;
  /** f(x), big-endian, SHARE_BYTES long. */
  y: Buffer;
}

function toBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value;
}

function toBytes(value: bigint, length: number): Buffer {
  const out = Buffer.alloc(length);
  let v = value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

/** a⁻¹ mod p by the extended Euclidean algorithm (a ≠ 0 mod p). */
function inverse(a: bigint): bigint {
  let [r0, r1] = [P, mod(a)];
  let [t0, t1] = [0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  if (r0 !== 1n) throw new FedcxrError('shamir_internal', 'no inverse: evaluation points must be distinct');
  return mod(t0);
}

/** Uniform element of GF(p), from the OS CSPRNG by rejection (521 random bits; only p itself is rejected). */
function randomField(): bigint {
  for (;;) {
    const bytes = randomBytes(SHARE_BYTES);
    bytes[0] &= 0x01;
    const value = toBigInt(bytes);
    if (value < P) return value;
  }
}

function checkThreshold(t: number, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOLDERS)
    throw new FedcxrError('shamir_usage', `share count must be an integer in 1..${MAX_HOLDERS}, got ${n}`);
  if (!Number.isInteger(t) || t < 2 || t > n)
    throw new FedcxrError('shamir_usage', `threshold must be an integer in 2..${n} (share count), got ${t}`);
}

function tagOf(secret: Uint8Array): Buffer {
  return createHash('sha256').update('fedcxr-shamir/v1').update(secret).digest().subarray(0, TAG_BYTES);
}

/** Splits `secret` (1…49 bytes) into n shares, any t of which recover it. */
export function splitSecret(secret: Uint8Array, n: number, t: number): Share[] {
  checkThreshold(t, n);
  if (secret.length < 1 || secret.length > MAX_SECRET_BYTES)
    throw new FedcxrError('shamir_usage', `secret must be 1..${MAX_SECRET_BYTES} bytes, got ${secret.length}`);
  const coefficients = [toBigInt(Buffer.concat([secret, tagOf(secret)]))];
  for (let k = 1; k < t; k++) coefficients.push(randomField());
  const shares: Share[] = [];
  for (let x = 1; x <= n; x++) {
    const bx = BigInt(x);
    let y = 0n;
    for (let k = coefficients.length - 1; k >= 0; k--) y = mod(y * bx + coefficients[k]);
    shares.push({ x, y: toBytes(y, SHARE_BYTES) });
  }
  return shares;
}

function parsePoints(shares: readonly Share[]): { x: bigint; y: bigint }[] {
  const seen = new Set<number>();
  return shares.map(({ x, y }) => {
    if (!Number.isInteger(x) || x < 1 || x > MAX_HOLDERS)
      throw new FedcxrError('shamir_invalid', `share evaluation point must be in 1..${MAX_HOLDERS}, got ${x}`);
    if (seen.has(x)) throw new FedcxrError('shamir_invalid', `two shares for evaluation point ${x}`);
    seen.add(x);
    if (y.length !== SHARE_BYTES)
      throw new FedcxrError('shamir_invalid', `share ${x} must be ${SHARE_BYTES} bytes, got ${y.length}`);
    const value = toBigInt(y);
    if (value >= P) throw new FedcxrError('shamir_corrupt', `share ${x} is not a field element`);
    return { x: BigInt(x), y: value };
  });
}

/** The polynomial through `points` (degree < points.length), evaluated at `at`, by Lagrange's formula. */
function lagrange(points: readonly { x: bigint; y: bigint }[], at: bigint): bigint {
  let sum = 0n;
  for (let i = 0; i < points.length; i++) {
    let numerator = 1n;
    let denominator = 1n;
    for (let j = 0; j < points.length; j++) {
      if (j === i) continue;
      numerator = mod(numerator * (at - points[j].x));
      denominator = mod(denominator * (points[i].x - points[j].x));
    }
    sum = mod(sum + points[i].y * numerator * inverse(denominator));
  }
  return sum;
}

/**
 * Evaluates the polynomial of degree < shares.length through `shares` at holder point `x` (0 = the secret).
 * Exposed for tests that show t−1 shares fit any secret.
 */
export function interpolateAt(shares: readonly Share[], x: number): Buffer {
  return toBytes(lagrange(parsePoints(shares), BigInt(x)), SHARE_BYTES);
}

/**
 * Recovers a `secretBytes`-long secret from at least t shares. Throws `shamir_too_few` below t,
 * `shamir_inconsistent` when more than t shares do not lie on one polynomial of degree < t, and
 * `shamir_corrupt` when the result is out of the secret's range (a corrupted share).
 */
export function combineShares(shares: readonly Share[], t: number, secretBytes: number): Buffer {
  checkThreshold(t, Math.max(t, shares.length));
  if (!Number.isInteger(secretBytes) || secretBytes < 1 || secretBytes > MAX_SECRET_BYTES)
    throw new FedcxrError('shamir_usage', `secret length must be 1..${MAX_SECRET_BYTES} bytes, got ${secretBytes}`);
  if (shares.length < t)
    throw new FedcxrError('shamir_too_few', `${shares.length} share(s) given, the threshold is ${t}`);
  const points = parsePoints(shares);
  const basis = points.slice(0, t);
  for (const extra of points.slice(t))
    if (lagrange(basis, extra.x) !== extra.y)
      throw new FedcxrError(
        'shamir_inconsistent',
        `share ${extra.x} does not lie on the polynomial of the first ${t} shares: a share is corrupt`,
      );
  const value = lagrange(basis, 0n);
  const length = secretBytes + TAG_BYTES;
  const corrupt = () =>
    new FedcxrError(
      'shamir_corrupt',
      `the rebuilt ${secretBytes}-byte secret fails its integrity tag: a share is corrupt`,
    );
  if (value >= 1n << BigInt(8 * length)) throw corrupt();
  const bytes = toBytes(value, length);
  const secret = bytes.subarray(0, secretBytes);
  if (!tagOf(secret).equals(bytes.subarray(secretBytes))) throw corrupt();
  return Buffer.from(secret);
}
