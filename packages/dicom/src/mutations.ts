/**
 * Byte-level mutations of DICOM files for fuzzing (used by fuzz.test.ts and bench/dicom/fuzz.ts).
 * Self-contained on purpose: the benchmark imports it straight from source.
 */

export type MutationKind = 'truncate' | 'bitflip' | 'bytes' | 'length' | 'tag' | 'attribute';
export const MUTATION_KINDS: MutationKind[] = ['truncate', 'bitflip', 'bytes', 'length', 'tag', 'attribute'];

export interface Mutation {
  kind: MutationKind;
  /** Position as a fraction of the file, in [0, 1). */
  at: number;
  /** Free random bits that each mutation interprets (count, value, choice). */
  value: number;
}

/** Tags whose corruption reaches deep code: image geometry, bit layout, frames, pixel data, items. */
const INTERESTING_TAGS: Array<[number, number]> = [
  [0x0028, 0x0010], // Rows
  [0x0028, 0x0011], // Columns
  [0x0028, 0x0100], // Bits Allocated
  [0x0028, 0x0101], // Bits Stored
  [0x0028, 0x0102], // High Bit
  [0x0028, 0x0103], // Pixel Representation
  [0x0028, 0x0002], // Samples per Pixel
  [0x0028, 0x0008], // Number of Frames
  [0x0028, 0x0004], // Photometric Interpretation
  [0x7fe0, 0x0010], // Pixel Data
  [0xfffe, 0xe000], // Item
  [0xfffe, 0xe0dd], // Sequence Delimitation
];
const BOGUS_LENGTHS = [0, 1, 2, 3, 0xffffffff, 0xfffffffe, 0x7fffffff, 0x10000, 0x100, 0x80000000];

function findTag(bytes: Uint8Array, group: number, element: number, start: number): number {
  for (let i = start; i + 3 < bytes.length; i++) {
    if (
      bytes[i] === (group & 0xff) &&
      bytes[i + 1] === group >> 8 &&
      bytes[i + 2] === (element & 0xff) &&
      bytes[i + 3] === element >> 8
    ) {
      return i;
    }
  }
  return -1;
}

export function mutate(original: Uint8Array, mutation: Mutation): Uint8Array {
  const size = original.length;
  const at = Math.min(size - 1, Math.max(0, Math.floor(mutation.at * size)));
  const value = mutation.value >>> 0;
  if (mutation.kind === 'truncate') return original.slice(0, at);
  const bytes = original.slice();
  const view = new DataView(bytes.buffer);
  switch (mutation.kind) {
    case 'bitflip': {
      const flips = 1 + (value % 8);
      let seed = value;
      for (let k = 0; k < flips; k++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        const position = (at + (seed % 4096)) % size;
        bytes[position] ^= 1 << (seed >>> 29);
      }
      return bytes;
    }
    case 'bytes': {
      const count = 1 + (value % 4);
      for (let k = 0; k < count && at + k < size; k++) bytes[at + k] = (value >>> (8 * k)) & 0xff;
      return bytes;
    }
    case 'length': {
      // Rewrite the length field of the element found at or after `at` (explicit 2/4-byte or implicit 4-byte).
      const [group, element] = INTERESTING_TAGS[value % INTERESTING_TAGS.length];
      let position = findTag(bytes, group, element, at);
      if (position < 0) position = findTag(bytes, group, element, 0);
      if (position < 0 || position + 12 > size) return bytes;
      const bogus = BOGUS_LENGTHS[(value >>> 8) % BOGUS_LENGTHS.length];
      const vr = String.fromCharCode(bytes[position + 4], bytes[position + 5]);
      if (/^[A-Z]{2}$/.test(vr) && !['OB', 'OW', 'SQ', 'UN', 'UT', 'OF', 'UC', 'UR'].includes(vr)) {
        view.setUint16(position + 6, bogus & 0xffff, true);
      } else if (/^[A-Z]{2}$/.test(vr)) {
        view.setUint32(position + 8, bogus, true);
      } else {
        view.setUint32(position + 4, bogus, true);
      }
      return bytes;
    }
    case 'tag': {
      const [group, element] = INTERESTING_TAGS[value % INTERESTING_TAGS.length];
      const position = at & ~1;
      if (position + 4 > size) return bytes;
      view.setUint16(position, group, true);
      view.setUint16(position + 2, element, true);
      return bytes;
    }
    case 'attribute': {
      // Change the value of one geometry/bit-layout attribute to an extreme or random number.
      const [group, element] = INTERESTING_TAGS[value % 9];
      const position = findTag(bytes, group, element, 0);
      if (position < 0 || position + 10 > size) return bytes;
      // Explicit short VRs and implicit VR both put the value 8 bytes after the tag.
      const valueAt = position + 8;
      const extremes = [0, 1, 7, 9, 15, 17, 31, 33, 64, 0xffff, 0x8000, (value >>> 16) & 0xffff];
      if (valueAt + 2 <= size) view.setUint16(valueAt, extremes[(value >>> 4) % extremes.length], true);
      return bytes;
    }
    default:
      return bytes;
  }
}

/** Deterministic pseudo-random mutations (xorshift32), for reproducible fuzz runs. */
export function* mutationStream(seed: number): Generator<Mutation> {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  for (;;) {
    const kind = MUTATION_KINDS[next() % MUTATION_KINDS.length];
    yield { kind, at: next() / 2 ** 32, value: next() };
  }
}
