import { describe, expect, it } from 'vitest';
import {
  addMasked,
  dequantize,
  generateSecAggKeys,
  maskUpdate,
  pairSeed,
  quantize,
  removeDroppedMasks,
} from './secagg.js';
import { mulberry32 } from './tabular-trainer.js';

const SCALE = 2 ** 16;
const N = 5000;

describe('secure aggregation arithmetic (pairwise masks)', () => {
  const ids = ['site-1', 'site-2', 'site-3', 'site-4'];
  const keys = new Map(ids.map((id) => [id, generateSecAggKeys()]));
  const updates = new Map(
    ids.map((id, k) => {
      const random = mulberry32(k + 1);
      return [id, Float32Array.from({ length: N }, () => (random() - 0.5) * 0.2)];
    }),
  );
  const seedsOf = (id: string, round: number) =>
    ids
      .filter((p) => p !== id)
      .map((peerId) => ({ peerId, seed: pairSeed(keys.get(id)!.privateKey, keys.get(peerId)!.publicKey, round) }));

  it('both sides of a pair derive the same seed, different per round', () => {
    const a = pairSeed(keys.get('site-1')!.privateKey, keys.get('site-2')!.publicKey, 3);
    const b = pairSeed(keys.get('site-2')!.privateKey, keys.get('site-1')!.publicKey, 3);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(pairSeed(keys.get('site-1')!.privateKey, keys.get('site-2')!.publicKey, 4))).toBe(false);
  });

  it('masks cancel in the sum: the coordinator recovers Σ updates, while one masked update looks random', () => {
    const sum = new Uint32Array(N);
    const masked = ids.map((id) => maskUpdate(quantize(updates.get(id)!, SCALE), id, seedsOf(id, 1)));
    for (const m of masked) addMasked(sum, m);
    const total = dequantize(sum, SCALE);
    for (let i = 0; i < N; i++) {
      const truth = ids.reduce((s, id) => s + updates.get(id)![i], 0);
      expect(Math.abs(total[i] - truth)).toBeLessThanOrEqual(ids.length / SCALE);
    }
    // A lone masked update is not the update: its values spread over the whole uint32 range.
    const lone = dequantize(masked[0], SCALE);
    const far = lone.filter((v, i) => Math.abs(v - updates.get('site-1')![i]) > 1).length;
    expect(far / N).toBeGreaterThan(0.99);
  });

  it('recovers the survivors’ sum when a site drops out after the key exchange', () => {
    const survivors = ['site-1', 'site-2', 'site-4'];
    const sum = new Uint32Array(N);
    for (const id of survivors) addMasked(sum, maskUpdate(quantize(updates.get(id)!, SCALE), id, seedsOf(id, 2)));
    // Without recovery, site-3's masks remain: garbage.
    const broken = dequantize(Uint32Array.from(sum), SCALE);
    const truth = (i: number) => survivors.reduce((s, id) => s + updates.get(id)![i], 0);
    expect(Math.abs(broken[0] - truth(0))).toBeGreaterThan(1);
    removeDroppedMasks(
      sum,
      survivors.map((survivorId) => ({
        survivorId,
        droppedId: 'site-3',
        seed: pairSeed(keys.get(survivorId)!.privateKey, keys.get('site-3')!.publicKey, 2),
      })),
    );
    const total = dequantize(sum, SCALE);
    for (let i = 0; i < N; i++) expect(Math.abs(total[i] - truth(i))).toBeLessThanOrEqual(survivors.length / SCALE);
  });
});
