/**
 * Secure aggregation (Bonawitz et al., CCS 2017, "Practical Secure Aggregation for Privacy-Preserving
 * Machine Learning"), with double masking. Per round each site draws two fresh X25519 key pairs (a masking
 * key s, a share-encryption key c) and a self-mask seed b. Once the coordinator has relayed every
 * participant's public keys and the threshold t, each site t-of-n Shamir-shares b and its masking private
 * key (shamir.ts) and sends each peer its pair of shares, AES-256-GCM-encrypted under a key from the pair's
 * c-agreement and bound to (round, sender, recipient); the coordinator relays ciphertexts it cannot read,
 * once every participant has shared or gone offline. The sharers are the round's members (the paper's U2);
 * only then does a site upload, modulo 2^32, its fixed-point update + PRG(b) + Σ_{member > self} PRG(s_pair)
 * − Σ_{member < self} PRG(s_pair) (PRG = AES-256-CTR keystream; s_pair = the pair's s-agreement hashed with
 * the round). Pairwise masks cancel in the sum. To unmask, the coordinator tells each survivor which members
 * delivered and which dropped; for every member j a survivor reveals EITHER its share of b_j (j delivered)
 * OR its share of j's masking key (j dropped), never both in one round: it records what it revealed and
 * refuses a contradictory request, a view that drops itself, a view that is not exactly the members, and one
 * with fewer than t survivors. From ≥ t answers the coordinator rebuilds the survivors' b (removing their
 * self masks) and the dropped members' masking keys (checked against their published keys; removing the
 * masks the survivors added toward them).
 *
 * What holds (t = `round.secaggThreshold`, default ⌊n/2⌋+1 of the n participants, 2 ≤ t ≤ n):
 * - Liveness: the round unmasks iff at least t participants share, at least t of them deliver, and at
 *   least t of those answer.
 * - Privacy against a coordinator that relays keys and shares faithfully but may lie about who dropped,
 *   colluding with a set C of fewer than t sites, as long as it gives every site the same survivor list: it
 *   learns nothing beyond the sum of the honest survivors' updates. Declaring a delivered site i "dropped"
 *   yields i's masking key (its pairwise masks), but then no honest site reveals a share of b_i, C holds
 *   fewer than t of them, and i's upload stays masked by PRG(b_i), i.e. uniformly random. Survivor lists
 *   have ≥ t sites, so the honest part of the sum spans ≥ t − |C| updates: a single honest update is exposed
 *   only with t − 1 colluders listed as survivors beside it (inherent to any sum; choose t accordingly).
 * - If it tells different sites different survivor lists (this implementation has no consistency round,
 *   unlike the paper's actively secure variant), getting both secrets of a site takes t shares of each from
 *   disjoint sets of honest sites plus C's: impossible while 2t > n + |C|. With the default t that covers
 *   |C| = 0 for odd n and |C| ≤ 1 for even n; a larger t buys margin at the cost of liveness.
 * What does not: keys are authenticated only by the coordinator that relays them, so a coordinator that
 * substitutes keys (man in the middle), or withholds some members' shares from some sites, is outside this
 * model; the threshold and participant list are the coordinator's (sites only check 2 ≤ t ≤ n, that they
 * are listed with their own keys, and that ≥ t members shared); a site can corrupt the sum (masked values
 * cannot be norm-checked, so sites must clip before masking), or deal inconsistent shares of its own
 * secrets (no verifiable secret sharing; altered shares of anyone else's are detected by the shares'
 * integrity tag and the published-key check). Keys live in memory only: a coordinator restart fails the
 * round. Wired in with `round.secureAggregation: true` (secagg:key / secagg:peers / secagg:shares /
 * secagg:reveal; apps/coordinator/src/secagg.test.ts).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { FedcxrError } from '@fedcxr/core';
import type { SecAggRefusalReason } from './protocol.js';
import { combineShares, SHARE_BYTES, type Share, splitSecret } from './shamir.js';

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

function publicKeyObject(hex: string): KeyObject {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new FedcxrError('secagg_key', 'peer public key must be 32 bytes of hex');
  return createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(hex, 'hex').toString('base64url') },
    format: 'jwk',
  });
}

/** The seed one pair shares for one round (same value computed by both sides). */
export function pairSeed(own: KeyObject, peerPublicHex: string, round: number): Buffer {
  const secret = diffieHellman({ privateKey: own, publicKey: publicKeyObject(peerPublicHex) });
  return createHash('sha256').update(secret).update(`fedcxr-secagg/round/${round}`).digest();
}

/** Raw 32-byte X25519 private scalar (what gets Shamir-shared). */
export function privateKeyBytes(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' }) as { d?: string };
  if (!jwk.d) throw new FedcxrError('secagg_key', 'not an X25519 private key');
  return Buffer.from(jwk.d, 'base64url');
}

/** PKCS#8 DER header of an X25519 private key (OID 1.3.101.110), followed by the 32 raw bytes. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

export function privateKeyFromBytes(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new FedcxrError('secagg_key', `X25519 private key must be 32 bytes, got ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

/** Raw public key (hex) of an X25519 private or public key. */
export function publicKeyHex(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' }) as { x: string };
  return Buffer.from(jwk.x, 'base64url').toString('hex');
}

/** n pseudo-random uint32 from a seed (AES-256-CTR keystream). */
export function maskStream(seed: Buffer, n: number): Uint32Array {
  const out = new Uint32Array(n);
  addMaskStream(out, seed, 1);
  return out;
}

/** Keystream words produced per step by addMaskStream (1 MiB). */
const STREAM_BLOCK_WORDS = 1 << 18;

/**
 * target += sign · maskStream(seed, target.length) (mod 2^32), one 1 MiB block of keystream at a time, so a
 * model-sized mask never sits in memory (the coordinator applies one per participant per round).
 */
export function addMaskStream(target: Uint32Array, seed: Buffer, sign: 1 | -1): void {
  const cipher = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16));
  const block = new Uint32Array(Math.min(target.length, STREAM_BLOCK_WORDS));
  const blockBytes = new Uint8Array(block.buffer);
  const zeros = new Uint8Array(blockBytes.length);
  for (let start = 0; start < target.length; start += STREAM_BLOCK_WORDS) {
    const count = Math.min(STREAM_BLOCK_WORDS, target.length - start);
    // CTR mode keeps its counter across update() calls: the blocks concatenate to one keystream.
    blockBytes.set(cipher.update(zeros.subarray(0, count * 4)));
    if (sign > 0) for (let i = 0; i < count; i++) target[start + i] = (target[start + i] + block[i]) >>> 0;
    else for (let i = 0; i < count; i++) target[start + i] = (target[start + i] - block[i]) >>> 0;
  }
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
    addMaskStream(out, seed, peerId > selfId ? 1 : -1);
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
    // The survivor added +mask if droppedId > survivorId, −mask otherwise: undo it.
    addMaskStream(sum, seed, droppedId > survivorId ? -1 : 1);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Double masking: thresholds, encrypted shares, the site's per-round session, and the coordinator's unmasking

/** ⌊n/2⌋ + 1: a strict majority of the round's participants. */
export function defaultThreshold(participants: number): number {
  return Math.floor(participants / 2) + 1;
}

/** 2 ≤ t ≤ n: below 2 one site's share would be its secret; above n nothing could be rebuilt. */
export function checkThreshold(threshold: number, participants: number): void {
  if (!Number.isInteger(participants) || participants < 2)
    throw new FedcxrError('secagg_threshold', `secure aggregation needs at least 2 participants, got ${participants}`);
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > participants)
    throw new FedcxrError(
      'secagg_threshold',
      `threshold must be an integer in 2..${participants} (the participants), got ${threshold}`,
    );
}

export interface SecAggPeer {
  siteId: string;
  /** Masking key: pairwise seeds come from it; its private half is Shamir-shared. */
  publicKey: string;
  /** Share-encryption key: only used to encrypt the shares sent to this peer. */
  shareKey: string;
}

export type RevealKind = 'self' | 'pairwise';

export interface RevealedShare {
  /** Whose secret this share is of. */
  siteId: string;
  /** 'self': of its self-mask seed b (it survived); 'pairwise': of its masking private key (it dropped). */
  kind: RevealKind;
  /** The share value, hex (SHARE_BYTES). */
  share: string;
}

export class SecAggRefusal extends FedcxrError {
  constructor(
    readonly reason: SecAggRefusalReason,
    message: string,
  ) {
    super(`secagg_refused_${reason}`, message);
  }
}

const SHARE_PLAINTEXT_BYTES = 2 * SHARE_BYTES;
const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;
/** Hex length of one encrypted share pair: iv ‖ ciphertext ‖ tag. */
export const SHARE_CIPHERTEXT_HEX = 2 * (GCM_IV_BYTES + SHARE_PLAINTEXT_BYTES + GCM_TAG_BYTES);

function shareCipherKey(own: KeyObject, peerShareKeyHex: string): Buffer {
  const secret = diffieHellman({ privateKey: own, publicKey: publicKeyObject(peerShareKeyHex) });
  return createHash('sha256').update(secret).update('fedcxr-secagg/share-key/v1').digest();
}

/** Binds a ciphertext to its round and direction: a relayed share cannot be replayed elsewhere. */
function shareAad(round: number, from: string, to: string): Buffer {
  return Buffer.from(`fedcxr-secagg/share/v1|${round}|${from}|${to}`);
}

export function encryptShare(
  own: KeyObject,
  recipientShareKey: string,
  round: number,
  from: string,
  to: string,
  plaintext: Uint8Array,
): string {
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', shareCipherKey(own, recipientShareKey), iv);
  cipher.setAAD(shareAad(round, from, to));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('hex');
}

export function decryptShare(
  own: KeyObject,
  senderShareKey: string,
  round: number,
  from: string,
  to: string,
  ciphertextHex: string,
): Buffer {
  const bytes = Buffer.from(ciphertextHex, 'hex');
  if (ciphertextHex.length !== SHARE_CIPHERTEXT_HEX || bytes.length * 2 !== ciphertextHex.length)
    throw new FedcxrError('secagg_share_invalid', `share from ${from} is not ${SHARE_CIPHERTEXT_HEX} hex digits`);
  const decipher = createDecipheriv(
    'aes-256-gcm',
    shareCipherKey(own, senderShareKey),
    bytes.subarray(0, GCM_IV_BYTES),
  );
  decipher.setAAD(shareAad(round, from, to));
  decipher.setAuthTag(bytes.subarray(bytes.length - GCM_TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(bytes.subarray(GCM_IV_BYTES, bytes.length - GCM_TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw new FedcxrError(
      'secagg_share_invalid',
      `share from ${from} to ${to} for round ${round} fails authentication (altered, or not meant for us)`,
    );
  }
}

/** Peers sorted by id: a peer's Shamir evaluation point is its position + 1. */
function sortedPeers(peers: readonly SecAggPeer[]): SecAggPeer[] {
  const sorted = [...peers].sort((a, b) => (a.siteId < b.siteId ? -1 : a.siteId > b.siteId ? 1 : 0));
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i].siteId === sorted[i - 1].siteId)
      throw new FedcxrError('secagg_peers', `site ${sorted[i].siteId} is listed twice among the peers`);
  return sorted;
}

/**
 * One site's secure-aggregation state for one round: fresh keys and self-mask seed, the shares it holds of
 * its peers' secrets, and what it has revealed (so it never reveals both secrets of one peer).
 */
export class SecAggSession {
  private readonly maskKeys = generateSecAggKeys();
  private readonly shareKeys = generateSecAggKeys();
  private readonly selfSeed = randomBytes(32);
  private peerList: SecAggPeer[] | undefined;
  /** The participants that shared their secrets (this site included): the ones masks are made with. */
  private members: SecAggPeer[] | undefined;
  private t = 0;
  /** Shares this site holds, by whose secret: of their b and of their masking key. */
  private readonly held = new Map<string, { self: Buffer; pairwise: Buffer }>();
  private readonly revealed = new Map<string, RevealKind>();
  private masked = false;

  constructor(
    readonly round: number,
    readonly siteId: string,
  ) {}

  /** What the site publishes (`secagg:key`). */
  get publicKeys(): { publicKey: string; shareKey: string } {
    return { publicKey: this.maskKeys.publicKey, shareKey: this.shareKeys.publicKey };
  }

  get hasPeers(): boolean {
    return this.peerList !== undefined;
  }

  /** True once the relayed shares are in: this site holds a share of every member's secrets. */
  get ready(): boolean {
    return this.members !== undefined;
  }

  /** The participants that shared (known once ready). */
  get memberIds(): string[] {
    return (this.members ?? []).map((p) => p.siteId);
  }

  get threshold(): number {
    return this.t;
  }

  /** True once `mask` ran: these masks must not hide a second update. */
  get spent(): boolean {
    return this.masked;
  }

  /**
   * Takes the coordinator's participant list and threshold; returns this site's shares of b and of its
   * masking key, one encrypted pair per other participant (its own pair it keeps).
   */
  setPeers(peers: readonly SecAggPeer[], threshold: number): { to: string; ciphertext: string }[] {
    if (this.peerList) throw new FedcxrError('secagg_peers', `round ${this.round}: the peer list was already set`);
    const sorted = sortedPeers(peers);
    checkThreshold(threshold, sorted.length);
    const me = sorted.find((p) => p.siteId === this.siteId);
    if (!me || me.publicKey !== this.maskKeys.publicKey || me.shareKey !== this.shareKeys.publicKey)
      throw new FedcxrError('secagg_peers', `round ${this.round}: the peer list does not carry ${this.siteId}'s keys`);
    const selfShares = splitSecret(this.selfSeed, sorted.length, threshold);
    const pairShares = splitSecret(privateKeyBytes(this.maskKeys.privateKey), sorted.length, threshold);
    const out: { to: string; ciphertext: string }[] = [];
    sorted.forEach((peer, i) => {
      if (peer.siteId === this.siteId) {
        this.held.set(peer.siteId, { self: selfShares[i].y, pairwise: pairShares[i].y });
        return;
      }
      const plaintext = Buffer.concat([selfShares[i].y, pairShares[i].y]);
      out.push({
        to: peer.siteId,
        ciphertext: encryptShare(
          this.shareKeys.privateKey,
          peer.shareKey,
          this.round,
          this.siteId,
          peer.siteId,
          plaintext,
        ),
      });
    });
    this.peerList = sorted;
    this.t = threshold;
    return out;
  }

  /**
   * Takes the shares the other participants sent us (relayed): at most one from each, all authentic. The
   * senders and this site are the round's members (participants that went offline before sharing are left
   * out, as in the paper's U2); there must be at least t of them.
   */
  acceptShares(shares: readonly { from: string; ciphertext: string }[]): void {
    const peers = this.peerList;
    if (!peers) throw new FedcxrError('secagg_shares', `round ${this.round}: shares arrived before the peer list`);
    if (this.ready) throw new FedcxrError('secagg_shares', `round ${this.round}: shares were already received`);
    const others = new Map(peers.filter((p) => p.siteId !== this.siteId).map((p) => [p.siteId, p]));
    const decrypted = new Map<string, Buffer>();
    for (const { from, ciphertext } of shares) {
      const peer = others.get(from);
      if (!peer) throw new FedcxrError('secagg_shares', `round ${this.round}: a share from non-participant ${from}`);
      if (decrypted.has(from)) throw new FedcxrError('secagg_shares', `round ${this.round}: two shares from ${from}`);
      decrypted.set(
        from,
        decryptShare(this.shareKeys.privateKey, peer.shareKey, this.round, from, this.siteId, ciphertext),
      );
    }
    if (decrypted.size + 1 < this.t)
      throw new FedcxrError(
        'secagg_shares',
        `round ${this.round}: only ${decrypted.size + 1} participant(s) shared, the threshold is ${this.t}`,
      );
    for (const [from, plain] of decrypted)
      this.held.set(from, { self: plain.subarray(0, SHARE_BYTES), pairwise: plain.subarray(SHARE_BYTES) });
    this.members = peers.filter((p) => p.siteId === this.siteId || decrypted.has(p.siteId));
  }

  /** y = q + PRG(b) + Σ_{peer > self} PRG(s) − Σ_{peer < self} PRG(s) (mod 2^32). One update per session. */
  mask(quantized: Uint32Array): Uint32Array {
    if (!this.members)
      throw new FedcxrError('secagg_not_ready', `round ${this.round}: masking before the shares were exchanged`);
    // Two different updates under the same masks would reveal their difference.
    if (this.masked) throw new FedcxrError('secagg_reuse', `round ${this.round}: these masks were already used`);
    this.masked = true;
    const seeds = this.members
      .filter((p) => p.siteId !== this.siteId)
      .map((p) => ({ peerId: p.siteId, seed: pairSeed(this.maskKeys.privateKey, p.publicKey, this.round) }));
    const out = maskUpdate(quantized, this.siteId, seeds);
    addMaskStream(out, this.selfSeed, 1);
    return out;
  }

  /**
   * Answers the coordinator's unmasking request: for each survivor the share of its b, for each dropped
   * site the share of its masking key. Refuses (SecAggRefusal, revealing nothing) unless the view is exactly
   * this round's members split in two, lists this site as a survivor, has ≥ t survivors, and agrees with
   * every earlier answer of this round. Repeating an earlier view gets the same answer.
   */
  reveal(survivors: readonly string[], dropped: readonly string[]): RevealedShare[] {
    if (!this.members) throw new SecAggRefusal('not_ready', `round ${this.round}: shares were never exchanged`);
    const participants = new Set(this.members.map((p) => p.siteId));
    const named = [...survivors, ...dropped];
    if (
      new Set(named).size !== named.length ||
      named.length !== participants.size ||
      named.some((id) => !participants.has(id))
    )
      throw new SecAggRefusal('bad_view', `round ${this.round}: survivors + dropped must be exactly the members`);
    if (!survivors.includes(this.siteId))
      throw new SecAggRefusal('self_dropped', `round ${this.round}: ${this.siteId} is not listed as a survivor`);
    if (survivors.length < this.t)
      throw new SecAggRefusal(
        'too_few_survivors',
        `round ${this.round}: ${survivors.length} survivor(s), the threshold is ${this.t}`,
      );
    const wanted = new Map<string, RevealKind>([
      ...survivors.map((id) => [id, 'self'] as const),
      ...dropped.map((id) => [id, 'pairwise'] as const),
    ]);
    for (const [id, kind] of wanted) {
      const before = this.revealed.get(id);
      if (before && before !== kind)
        throw new SecAggRefusal(
          'contradiction',
          `round ${this.round}: ${this.siteId} already revealed the ${before} share of ${id}; refusing its ${kind} share`,
        );
    }
    const out: RevealedShare[] = [];
    for (const [id, kind] of wanted) {
      this.revealed.set(id, kind);
      const held = this.held.get(id)!;
      out.push({ siteId: id, kind, share: (kind === 'self' ? held.self : held.pairwise).toString('hex') });
    }
    return out;
  }
}

/**
 * Coordinator side: removes every mask from the modular sum of the survivors' uploads, given ≥ t answers.
 * `peers` is the full peer list (it fixes the Shamir points), `members` the participants that shared (all
 * peers when omitted), `reveals` maps each answering survivor to its shares. Survivors' self masks come off with their rebuilt b;
 * for each dropped site its rebuilt masking key (checked against its published key) gives the seeds the
 * survivors masked toward it. Throws `secagg_unrecoverable` when a secret has fewer than t shares and
 * `secagg_corrupt` when shares do not agree.
 */
export function unmaskSum(
  sum: Uint32Array,
  input: {
    round: number;
    peers: readonly SecAggPeer[];
    members?: readonly string[];
    threshold: number;
    survivors: readonly string[];
    reveals: ReadonlyMap<string, readonly RevealedShare[]>;
  },
): void {
  const all = sortedPeers(input.peers);
  checkThreshold(input.threshold, all.length);
  const point = new Map(all.map((p, i) => [p.siteId, i + 1]));
  for (const id of input.members ?? [])
    if (!point.has(id)) throw new FedcxrError('secagg_unmask', `member ${id} is not a peer of round ${input.round}`);
  const peers = input.members ? all.filter((p) => input.members!.includes(p.siteId)) : all;
  const survivors = new Set(input.survivors);
  for (const id of survivors)
    if (!peers.some((p) => p.siteId === id))
      throw new FedcxrError('secagg_unmask', `survivor ${id} is not a member of round ${input.round}`);
  for (const id of input.reveals.keys())
    if (!survivors.has(id)) throw new FedcxrError('secagg_unmask', `${id} answered but is not a survivor`);
  const sharesOf = (siteId: string, kind: RevealKind): Share[] => {
    const shares: Share[] = [];
    for (const [revealer, entries] of input.reveals) {
      const entry = entries.find((e) => e.siteId === siteId && e.kind === kind);
      if (entry) shares.push({ x: point.get(revealer)!, y: Buffer.from(entry.share, 'hex') });
    }
    return shares;
  };
  const rebuild = (siteId: string, kind: RevealKind): Buffer => {
    const shares = sharesOf(siteId, kind);
    if (shares.length < input.threshold)
      throw new FedcxrError(
        'secagg_unrecoverable',
        `${shares.length} share(s) of ${siteId}'s ${kind === 'self' ? 'self-mask seed' : 'masking key'}, ${input.threshold} needed`,
      );
    try {
      return combineShares(shares, input.threshold, 32);
    } catch (error) {
      throw new FedcxrError('secagg_corrupt', `shares of ${siteId}'s ${kind} secret: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
  for (const peer of peers) {
    if (survivors.has(peer.siteId)) {
      addMaskStream(sum, rebuild(peer.siteId, 'self'), -1);
      continue;
    }
    const key = privateKeyFromBytes(rebuild(peer.siteId, 'pairwise'));
    if (publicKeyHex(key) !== peer.publicKey)
      throw new FedcxrError(
        'secagg_corrupt',
        `the rebuilt masking key of ${peer.siteId} does not match its published key`,
      );
    removeDroppedMasks(
      sum,
      peers
        .filter((p) => survivors.has(p.siteId))
        .map((p) => ({ survivorId: p.siteId, droppedId: peer.siteId, seed: pairSeed(key, p.publicKey, input.round) })),
    );
  }
}
