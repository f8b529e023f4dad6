import { createCipheriv } from 'node:crypto';
import { Rng } from '@fedcxr/core';
import { describe, expect, it } from 'vitest';
import {
  addMasked,
  addMaskStream,
  checkThreshold,
  defaultThreshold,
  dequantize,
  generateSecAggKeys,
  maskStream,
  maskUpdate,
  pairSeed,
  privateKeyFromBytes,
  publicKeyHex,
  quantize,
  type RevealedShare,
  removeDroppedMasks,
  type SecAggPeer,
  SecAggRefusal,
  SecAggSession,
  unmaskSum,
} from './secagg.js';
import { combineShares } from './shamir.js';

const SCALE = 2 ** 16;
const N = 5000;

describe('secure aggregation arithmetic (pairwise masks)', () => {
  const ids = ['site-1', 'site-2', 'site-3', 'site-4'];
  const keys = new Map(ids.map((id) => [id, generateSecAggKeys()]));
  const updates = new Map(
    ids.map((id, k) => {
      const rng = new Rng(k + 1);
      return [id, Float32Array.from({ length: N }, () => (rng.next() - 0.5) * 0.2)];
    }),
  );
  const seedsOf = (id: string, round: number) =>
    ids
      .filter((p) => p !== id)
      .map((peerId) => ({ peerId, seed: pairSeed(keys.get(id)!.privateKey, keys.get(peerId)!.publicKey, round) }));

  it('the keystream applied block by block equals the one-piece AES-256-CTR keystream', () => {
    const seed = Buffer.alloc(32, 7);
    const n = (1 << 18) * 2 + 5; // crosses two block boundaries
    const cipher = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16));
    const whole = Buffer.from(cipher.update(Buffer.alloc(n * 4)));
    const reference = new Uint32Array(whole.buffer, whole.byteOffset, n);
    expect(maskStream(seed, n)).toEqual(reference);
    const target = Uint32Array.from({ length: n }, (_, i) => i * 2654435761);
    const before = Uint32Array.from(target);
    addMaskStream(target, seed, 1);
    expect(target[n - 1]).toBe((before[n - 1] + reference[n - 1]) >>> 0);
    expect(target[(1 << 18) + 3]).toBe((before[(1 << 18) + 3] + reference[(1 << 18) + 3]) >>> 0);
    addMaskStream(target, seed, -1);
    expect(target).toEqual(before);
  });

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

/** The whole share exchange among `ids`, as the coordinator would relay it. */
function exchange(ids: readonly string[], threshold: number, round: number) {
  const sessions = new Map(ids.map((id) => [id, new SecAggSession(round, id)]));
  const peers: SecAggPeer[] = ids.map((id) => ({ siteId: id, ...sessions.get(id)!.publicKeys }));
  const outgoing = new Map(ids.map((id) => [id, sessions.get(id)!.setPeers(peers, threshold)]));
  for (const id of ids)
    sessions
      .get(id)!
      .acceptShares(
        ids
          .filter((from) => from !== id)
          .map((from) => ({ from, ciphertext: outgoing.get(from)!.find((s) => s.to === id)!.ciphertext })),
      );
  return { sessions, peers, outgoing };
}

/** Pearson correlation of two uint32 vectors read as two's-complement int32. */
function correlation(a: Uint32Array, b: Uint32Array): number {
  const x = new Int32Array(a.buffer, a.byteOffset, a.length);
  const y = new Int32Array(b.buffer, b.byteOffset, b.length);
  const mean = (v: Int32Array) => v.reduce((s, e) => s + e, 0) / v.length;
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe('secure aggregation with double masking (self masks + Shamir-shared secrets)', () => {
  const ids = ['site-1', 'site-2', 'site-3', 'site-4', 'site-5'];
  const M = 20_000;
  const plain = new Map(
    ids.map((id, k) => {
      const rng = new Rng(100 + k);
      return [
        id,
        quantize(
          Float32Array.from({ length: M }, () => (rng.next() - 0.5) * 40),
          SCALE,
        ),
      ];
    }),
  );
  const plainSum = (who: readonly string[]) => {
    const sum = new Uint32Array(M);
    for (const id of who) addMasked(sum, plain.get(id)!);
    return sum;
  };

  it('thresholds: default ⌊n/2⌋+1, and 2 ≤ t ≤ n enforced', () => {
    expect([2, 3, 4, 5, 10].map(defaultThreshold)).toEqual([2, 2, 3, 3, 6]);
    expect(() => checkThreshold(1, 5)).toThrow(/threshold must be an integer in 2..5/);
    expect(() => checkThreshold(6, 5)).toThrow(/threshold must be an integer in 2..5/);
    expect(() => checkThreshold(2, 1)).toThrow(/at least 2 participants/);
    expect(() => checkThreshold(5, 5)).not.toThrow();
  });

  it('the sum is exact when everyone delivers: self masks come off with the rebuilt seeds', () => {
    const { sessions, peers } = exchange(ids, 3, 7);
    const sum = new Uint32Array(M);
    for (const id of ids) addMasked(sum, sessions.get(id)!.mask(plain.get(id)!));
    // Pairwise masks cancel, but the self masks are still on: the sum is not yet the plain sum.
    expect(sum).not.toEqual(plainSum(ids));
    const reveals = new Map(ids.slice(0, 3).map((id) => [id, sessions.get(id)!.reveal(ids, [])]));
    for (const shares of reveals.values()) expect(shares.every((s) => s.kind === 'self')).toBe(true);
    unmaskSum(sum, { round: 7, peers, threshold: 3, survivors: ids, reveals });
    expect(sum).toEqual(plainSum(ids));
  });

  it('the sum is exact when a site drops out after the share exchange', () => {
    const { sessions, peers } = exchange(ids, 3, 8);
    const survivors = ids.filter((id) => id !== 'site-3');
    const sum = new Uint32Array(M);
    for (const id of survivors) addMasked(sum, sessions.get(id)!.mask(plain.get(id)!));
    const reveals = new Map(survivors.map((id) => [id, sessions.get(id)!.reveal(survivors, ['site-3'])]));
    expect(reveals.get('site-1')!.find((s) => s.siteId === 'site-3')!.kind).toBe('pairwise');
    unmaskSum(sum, { round: 8, peers, threshold: 3, survivors, reveals });
    expect(sum).toEqual(plainSum(survivors));
    // Fewer than t answers cannot unmask.
    const two = new Map([...reveals].slice(0, 2));
    expect(() => unmaskSum(new Uint32Array(M), { round: 8, peers, threshold: 3, survivors, reveals: two })).toThrow(
      /2 share\(s\) of site-1's self-mask seed, 3 needed/,
    );
  });

  it('a lying coordinator gets at most one secret per site: contradictory requests are refused', () => {
    const { sessions, peers } = exchange(ids, 3, 9);
    const masked = new Map(ids.map((id) => [id, sessions.get(id)!.mask(plain.get(id)!)]));
    // Every site delivered; the coordinator claims site-2 dropped and collects shares of its masking key.
    const lieSurvivors = ids.filter((id) => id !== 'site-2');
    const lie = new Map(lieSurvivors.map((id) => [id, sessions.get(id)!.reveal(lieSurvivors, ['site-2'])]));
    // Then asks the same sites, in the same round, for site-2's self-mask shares: refused, nothing revealed.
    for (const id of lieSurvivors) {
      let refusal: unknown;
      try {
        sessions.get(id)!.reveal(ids, []);
      } catch (error) {
        refusal = error;
      }
      expect(refusal).toBeInstanceOf(SecAggRefusal);
      expect((refusal as SecAggRefusal).reason).toBe('contradiction');
      expect((refusal as Error).message).toMatch(
        /already revealed the pairwise share of site-2; refusing its self share/,
      );
    }
    // The honest view repeated is answered again identically (a retry is not a contradiction).
    expect(sessions.get('site-1')!.reveal(lieSurvivors, ['site-2'])).toEqual(lie.get('site-1'));
    // site-2 itself never reveals anything in a view that drops it.
    expect(() => sessions.get('site-2')!.reveal(lieSurvivors, ['site-2'])).toThrow(
      /site-2 is not listed as a survivor/,
    );

    // What the lie bought: site-2's masking key (checked against its published key) → all its pairwise masks.
    const shareOf = (id: string, of: string, kind: RevealedShare['kind']) =>
      lie.get(id)!.find((s) => s.siteId === of && s.kind === kind)!;
    const pointOf = (id: string) => ids.indexOf(id) + 1;
    const key = privateKeyFromBytes(
      combineShares(
        lieSurvivors.map((id) => ({ x: pointOf(id), y: Buffer.from(shareOf(id, 'site-2', 'pairwise').share, 'hex') })),
        3,
        32,
      ),
    );
    expect(publicKeyHex(key)).toBe(peers[1].publicKey);
    // Undo the masks site-2 added toward each peer (removeDroppedMasks with site-2 in the survivor's role).
    const residual = Uint32Array.from(masked.get('site-2')!);
    removeDroppedMasks(
      residual,
      ids
        .filter((id) => id !== 'site-2')
        .map((id) => ({
          survivorId: 'site-2',
          droppedId: id,
          seed: pairSeed(key, peers[ids.indexOf(id)].publicKey, 9),
        })),
    );
    // Without double masking the residual would be site-2's plain update; here PRG(b) still hides it.
    const q = plain.get('site-2')!;
    expect(residual).not.toEqual(q);
    expect(Math.abs(correlation(residual, q))).toBeLessThan(0.05);
    expect(correlation(q, q)).toBeCloseTo(1, 10); // the measure itself does see an update
    const update = dequantize(q, SCALE);
    const far = dequantize(residual, SCALE).filter((v, i) => Math.abs(v - update[i]) > 1).length;
    expect(far / M).toBeGreaterThan(0.99);
    // Fewer than t colluding sites hold too few self-mask shares of site-2: its b stays out of reach.
    expect(() =>
      combineShares(
        [
          { x: 1, y: Buffer.alloc(66) },
          { x: 3, y: Buffer.alloc(66) },
        ],
        3,
        32,
      ),
    ).toThrow(/threshold is 3/);
  });

  it('a single masked update is neither the update nor correlated with it', () => {
    const { sessions } = exchange(ids, 3, 10);
    const q = plain.get('site-4')!;
    const y = sessions.get('site-4')!.mask(q);
    expect(y).not.toEqual(q);
    expect(Math.abs(correlation(y, q))).toBeLessThan(0.05);
    const equal = y.filter((v, i) => v === q[i]).length;
    expect(equal / M).toBeLessThan(0.001);
  });

  it('a participant that never shares is left out (U2): members mask among themselves, the sum stays exact', () => {
    const round = 14;
    const sessions = new Map(ids.map((id) => [id, new SecAggSession(round, id)]));
    const peers: SecAggPeer[] = ids.map((id) => ({ siteId: id, ...sessions.get(id)!.publicKeys }));
    // site-5 publishes its key, then dies before sharing: the coordinator relays only the others' shares.
    const members = ids.slice(0, 4);
    const outgoing = new Map(members.map((id) => [id, sessions.get(id)!.setPeers(peers, 3)]));
    for (const id of members)
      sessions
        .get(id)!
        .acceptShares(
          members
            .filter((from) => from !== id)
            .map((from) => ({ from, ciphertext: outgoing.get(from)!.find((s) => s.to === id)!.ciphertext })),
        );
    expect(sessions.get('site-1')!.memberIds).toEqual(members);
    // site-2 also drops after sharing, before uploading.
    const survivors = ['site-1', 'site-3', 'site-4'];
    const sum = new Uint32Array(M);
    for (const id of survivors) addMasked(sum, sessions.get(id)!.mask(plain.get(id)!));
    // Views are over the members only: naming site-5 is refused.
    expect(() => sessions.get('site-1')!.reveal(survivors, ['site-2', 'site-5'])).toThrow(/exactly the members/);
    const reveals = new Map(survivors.map((id) => [id, sessions.get(id)!.reveal(survivors, ['site-2'])]));
    unmaskSum(sum, { round, peers, members, threshold: 3, survivors, reveals });
    expect(sum).toEqual(plainSum(survivors));
    // Too few sharers to ever unmask: refused at once.
    const lone = new SecAggSession(round, 'site-1');
    lone.setPeers(
      peers.map((p) => (p.siteId === 'site-1' ? { siteId: 'site-1', ...lone.publicKeys } : p)),
      3,
    );
    expect(() => lone.acceptShares([])).toThrow(/only 1 participant\(s\) shared, the threshold is 3/);
  });

  it('refuses views that are not the participants split in two, or with fewer than t survivors', () => {
    const { sessions } = exchange(ids, 3, 11);
    const s1 = sessions.get('site-1')!;
    const reasonOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return (error as SecAggRefusal).reason;
      }
      return 'answered';
    };
    expect(reasonOf(() => s1.reveal(['site-1', 'site-2'], ['site-3', 'site-4', 'site-5']))).toBe('too_few_survivors');
    expect(reasonOf(() => s1.reveal(['site-1', 'site-2', 'site-3'], ['site-4']))).toBe('bad_view');
    expect(reasonOf(() => s1.reveal(['site-1', 'site-2', 'site-3', 'site-9'], ['site-4', 'site-5']))).toBe('bad_view');
    expect(reasonOf(() => s1.reveal(['site-1', 'site-2', 'site-3', 'site-3'], ['site-4', 'site-5']))).toBe('bad_view');
    expect(reasonOf(() => s1.reveal(['site-2', 'site-3', 'site-4'], ['site-1', 'site-5']))).toBe('self_dropped');
    // None of those refusals recorded anything: a valid view is still answered.
    expect(reasonOf(() => s1.reveal(['site-1', 'site-2', 'site-3', 'site-4'], ['site-5']))).toBe('answered');
    expect(reasonOf(() => new SecAggSession(11, 'site-1').reveal(ids, []))).toBe('not_ready');
  });

  it('detects altered shares, in transit and at unmasking', () => {
    const { sessions, peers, outgoing } = exchange(['a', 'b', 'c'], 2, 12);
    // In transit: a flipped ciphertext bit, or a share meant for someone else, fails authentication.
    const c = new SecAggSession(12, 'c');
    const cPeers = peers.map((p) => (p.siteId === 'c' ? { siteId: 'c', ...c.publicKeys } : p));
    c.setPeers(cPeers, 2);
    const toB = outgoing.get('a')!.find((s) => s.to === 'b')!.ciphertext;
    const flipped = `${toB.slice(0, 40)}${toB[40] === '0' ? '1' : '0'}${toB.slice(41)}`;
    expect(() =>
      c.acceptShares([
        { from: 'a', ciphertext: flipped },
        { from: 'b', ciphertext: flipped },
      ]),
    ).toThrow(/fails authentication/);
    expect(() => c.acceptShares([{ from: 'a', ciphertext: toB }])).toThrow(/fails authentication/);
    // At unmasking: an altered self-mask share or masking-key share is caught, not folded into the sum.
    const sum = new Uint32Array(8);
    for (const id of ['a', 'b']) addMasked(sum, sessions.get(id)!.mask(new Uint32Array(8)));
    const reveals = new Map(['a', 'b'].map((id) => [id, sessions.get(id)!.reveal(['a', 'b'], ['c'])]));
    const alter = (kind: 'self' | 'pairwise') =>
      new Map(
        [...reveals].map(([id, shares]) => [
          id,
          shares.map((s) =>
            id === 'b' && s.kind === kind
              ? { ...s, share: `${s.share.slice(0, 100)}${s.share[100] === 'a' ? 'b' : 'a'}${s.share.slice(101)}` }
              : s,
          ),
        ]),
      );
    const input = { round: 12, peers, threshold: 2, survivors: ['a', 'b'] };
    expect(() => unmaskSum(Uint32Array.from(sum), { ...input, reveals: alter('self') })).toThrow(/a share is corrupt/);
    expect(() => unmaskSum(Uint32Array.from(sum), { ...input, reveals: alter('pairwise') })).toThrow(
      /a share is corrupt/,
    );
    unmaskSum(sum, { ...input, reveals });
    expect(sum).toEqual(new Uint32Array(8));
  });

  it('checks the peer list, and uses its masks once', () => {
    const session = new SecAggSession(13, 'site-1');
    const other = new SecAggSession(13, 'site-2');
    const me = { siteId: 'site-1', ...session.publicKeys };
    const peer = { siteId: 'site-2', ...other.publicKeys };
    expect(() => session.setPeers([me, peer], 1)).toThrow(/threshold must be an integer in 2..2/);
    expect(() => session.setPeers([{ ...me, publicKey: peer.publicKey }, peer], 2)).toThrow(
      /does not carry site-1's keys/,
    );
    expect(() => session.setPeers([me, peer, peer], 2)).toThrow(/listed twice/);
    expect(() => session.mask(new Uint32Array(4))).toThrow(/masking before the shares were exchanged/);
    const { sessions } = exchange(['x', 'y'], 2, 13);
    sessions.get('x')!.mask(new Uint32Array(4));
    expect(sessions.get('x')!.spent).toBe(true);
    expect(() => sessions.get('x')!.mask(new Uint32Array(4))).toThrow(/already used/);
  });
});
