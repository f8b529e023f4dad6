/**
 * DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header of up to 15 segment offsets, one PackBits segment per
 * byte plane (most significant byte first, sample by sample). Returns one plane per segment.
 * Throws plain Errors; the caller names the file.
 */
export function decodeRleSegments(encoded: Uint8Array, pixelsPerPlane: number): Uint8Array[] {
  if (encoded.length < 64) throw new Error(`RLE header needs 64 bytes, got ${encoded.length}`);
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const count = view.getUint32(0, true);
  if (count < 1 || count > 15) throw new Error(`RLE header declares ${count} segments (1 to 15 allowed)`);
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) offsets.push(view.getUint32(4 + 4 * i, true));
  const planes: Uint8Array[] = [];
  for (let s = 0; s < count; s++) {
    const start = offsets[s];
    const end = s + 1 < count ? offsets[s + 1] : encoded.length;
    if (start < 64 || start > encoded.length || end < start || end > encoded.length) {
      throw new Error(`RLE segment ${s} has offsets ${start}..${end} outside the ${encoded.length}-byte frame`);
    }
    planes.push(unpackBits(encoded, start, end, pixelsPerPlane, s));
  }
  return planes;
}

function unpackBits(source: Uint8Array, start: number, end: number, size: number, segment: number): Uint8Array {
  const out = new Uint8Array(size);
  let read = start;
  let written = 0;
  while (read < end && written < size) {
    const header = source[read++];
    if (header < 128) {
      const literal = header + 1;
      if (read + literal > end) throw new Error(`RLE segment ${segment}: literal run past the segment end`);
      const take = Math.min(literal, size - written);
      out.set(source.subarray(read, read + take), written);
      written += take;
      read += literal;
    } else if (header > 128) {
      if (read >= end) throw new Error(`RLE segment ${segment}: replicate run past the segment end`);
      const value = source[read++];
      const take = Math.min(257 - header, size - written);
      out.fill(value, written, written + take);
      written += take;
    }
    // 128 is a no-op by definition.
  }
  if (written < size) throw new Error(`RLE segment ${segment} decoded ${written} of ${size} bytes`);
  return out;
}
