/**
 * Secure-aggregation arithmetic (pairwise additive masks, Bonawitz et al. 2017 without the Shamir layer):
 * each pair of sites agrees on a seed by X25519 Diffie-Hellman; every site adds, modulo 2^32, the AES-CTR
 * mask stream of each pair (+ toward higher ids, − toward lower ids) to its fixed-point update. In the
 * sum over all sites the masks cancel, so whoever sums sees only the sum. When a site drops out after the
 * key exchange, each survivor reveals its seed with that site only, and the coordinator removes those masks.
 *
 * What holds: against an honest-but-curious coordinator that reports dropouts truthfully, a single masked
 * update is uniformly distributed (it reveals nothing); only the sum of the surviving updates is learned.
 * What does not: a coordinator that lies ("site i dropped") after receiving i's masked update can ask the
 * others for i's seeds and unmask it (the double-masking/Shamir layer of the paper prevents that and is not
 * implemented); masked values cannot be norm-checked, so sites must clip before masking. Wired in with
 * `round.secureAggregation: true` (secagg:key / secagg:peers / secagg:reveal; apps/coordinator/src/secagg.test.ts).
 */
import {
  createCipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { FedcxrError } from '@fedcxr/core';

export interface SecAggKeyPair {
  /** Raw X25519 public key, hex (what a site would publish through the coordinator). */
  publicKey: string;
  privateKey: KeyObject;
}

export function generateSecAggKeys(): SecAggKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string };
  return { publicKey: Buffer.from(jwk.x, 'base64url').toString('hex'), privateKey };
}

/** The seed one pair shares for one round (same value computed by both sides). */
export function pairSeed(own: KeyObject, peerPublicHex: string, round: number): Buffer {
  if (!/^[0-9a-f]{64}$/.test(peerPublicHex))
    throw new FedcxrError('secagg_key', 'peer public key must be 32 bytes of hex');
  const peer = createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(peerPublicHex, 'hex').toString('base64url') },
    format: 'jwk',
  });
  const secret = diffieHellman({ privateKey: own, publicKey: peer });
  return createHash('sha256').update(secret).update(`fedcxr-secagg/round/${round}`).digest();
}

/** n pseudo-random uint32 from a seed (AES-256-CTR keystream). */
export function maskStream(seed: Buffer, n: number): Uint32Array {
  const cipher = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16));
  const bytes = cipher.update(Buffer.alloc(n * 4));
  const out = new Uint32Array(n);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Fixed point: round(x·scale) as a two's-complement uint32. */
export function quantize(values: Float32Array, scale: number): Uint32Array {
  const out = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.round(values[i] * scale) >>> 0;
  return out;
}

export function dequantize(values: Uint32Array, scale: number): Float32Array {
  const signed = new Int32Array(values.buffer, values.byteOffset, values.length);
  return Float32Array.from(signed, (v) => v / scale);
}

export interface PairSeed {
  peerId: string;
  seed: Buffer;
}

/** y = q + Σ_{peer > self} mask − Σ_{peer < self} mask (mod 2^32). Ids compare as strings. */
export function maskUpdate(quantized: Uint32Array, selfId: string, peers: readonly PairSeed[]): Uint32Array {
  const out = Uint32Array.from(quantized);
  for (const { peerId, seed } of peers) {
    if (peerId === selfId) continue;
    const mask = maskStream(seed, out.length);
    if (peerId > selfId) for (let i = 0; i < out.length; i++) out[i] = (out[i] + mask[i]) >>> 0;
    else for (let i = 0; i < out.length; i++) out[i] = (out[i] - mask[i]) >>> 0;
  }
  return out;
}

/** Sums masked updates modulo 2^32, in place into `sum`. */
export function addMasked(sum: Uint32Array, masked: Uint32Array): void {
  for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] + masked[i]) >>> 0;
}

/**
 * Removes the masks a survivor added toward a dropped site, from the seeds the survivors reveal for the
 * dropped sites only.
 */
export function removeDroppedMasks(
  sum: Uint32Array,
  revealed: readonly { survivorId: string; droppedId: string; seed: Buffer }[],
): void {
  for (const { survivorId, droppedId, seed } of revealed) {
    const mask = maskStream(seed, sum.length);
    // The survivor added +mask if droppedId > survivorId, −mask otherwise: undo it.
    if (droppedId > survivorId) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] - mask[i]) >>> 0;
    else for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] + mask[i]) >>> 0;
  }
}
