/**
 * Min and max of a frame's stored values, found once per array: the reader records them for the 8-bit frames it
 * has just copied (still in cache), normalize looks them up (every table-driven preset needs them). Decoded frames
 * are therefore treated as read-only once read.
 */
export interface ValueRange {
  min: number;
  max: number;
}

const ranges = new WeakMap<Int32Array | Uint8Array, ValueRange>();

/** Records the range of `values`, which the caller has just computed exactly. */
export function rememberValueRange(values: Int32Array | Uint8Array, range: ValueRange): void {
  ranges.set(values, range);
}

/** Min and max of the values (0 and −1 when empty), recorded or scanned. */
export function valueRange(values: Int32Array | Uint8Array): ValueRange {
  let range = ranges.get(values);
  if (!range) {
    range = values instanceof Uint8Array ? byteRange(values, values.length) : scanRange(values);
    ranges.set(values, range);
  }
  return range;
}

/** Two interleaved pairs of running extremes halve the dependency chains of a plain scan. */
function scanRange(values: Int32Array): ValueRange {
  const n = values.length;
  if (n === 0) return { min: 0, max: -1 };
  let min0 = values[0];
  let max0 = min0;
  let min1 = min0;
  let max1 = min0;
  let i = 1;
  for (; i + 1 < n; i += 2) {
    const a = values[i];
    const b = values[i + 1];
    if (a < min0) min0 = a;
    if (a > max0) max0 = a;
    if (b < min1) min1 = b;
    if (b > max1) max1 = b;
  }
  if (i < n) {
    const a = values[i];
    if (a < min0) min0 = a;
    if (a > max0) max0 = a;
  }
  return { min: Math.min(min0, min1), max: Math.max(max0, max1) };
}

/** Scratch for byteRange: which of the 256 byte values occur. */
const seen = new Uint8Array(256);

/**
 * Min and max of the first `n` bytes. Marking the values seen, four bytes per load, has no data-dependent branches
 * (a compare-and-keep scan mispredicts on image data); it stops early once both 0 and 255 have been seen, as
 * nothing can widen the range further.
 */
export function byteRange(bytes: Uint8Array, n: number): ValueRange {
  if (n === 0) return { min: 0, max: -1 };
  seen.fill(0);
  let i = 0;
  const misaligned = (4 - (bytes.byteOffset % 4)) % 4;
  for (; i < Math.min(n, misaligned); i++) seen[bytes[i]] = 1;
  const wordCount = i < misaligned ? 0 : (n - i) >> 2;
  const words = wordCount > 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset + i, wordCount) : new Uint32Array(0);
  const chunk = 4096;
  for (let start = 0; start < wordCount; start += chunk) {
    const end = Math.min(wordCount, start + chunk);
    for (let j = start; j < end; j++) {
      const w = words[j];
      seen[w & 255] = 1;
      seen[(w >>> 8) & 255] = 1;
      seen[(w >>> 16) & 255] = 1;
      seen[w >>> 24] = 1;
    }
    if (seen[0] === 1 && seen[255] === 1) return { min: 0, max: 255 };
  }
  for (i += wordCount * 4; i < n; i++) seen[bytes[i]] = 1;
  let min = 0;
  while (seen[min] === 0) min++;
  let max = 255;
  while (seen[max] === 0) max--;
  return { min, max };
}
