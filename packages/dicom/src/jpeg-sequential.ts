/**
 * A small sequential (baseline / extended, Huffman) JPEG decoder for 8- or 12-bit images with one component, or
 * three without subsampling — what DICOM's "JPEG Extended (Process 2 and 4)" carries for 12-bit radiographs, which
 * the 8-bit libjpeg-turbo build cannot decode, and RGB JPEGs stored without colour transform, which that build
 * would wrongly convert from YCbCr. The inverse DCT is a port of IJG libjpeg's integer "islow" method (jidctint.c, with its
 * range-limit table), the default of libjpeg, libjpeg-turbo and GDCM, so the output matches them bit for bit.
 * Throws plain Errors on malformed streams; the caller names the file.
 */

const ZIGZAG = Int32Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47,
  55, 62, 63,
]);

interface Huffman {
  maxCode: Int32Array; // per length 1..16, -1 when none
  valPtr: Int32Array;
  minCode: Int32Array;
  values: Uint8Array;
}

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxCode = new Int32Array(18).fill(-1);
  const valPtr = new Int32Array(17);
  const minCode = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let length = 1; length <= 16; length++) {
    const n = counts[length - 1];
    if (n > 0) {
      valPtr[length] = k;
      minCode[length] = code;
      code += n;
      k += n;
      maxCode[length] = code - 1;
    }
    code <<= 1;
  }
  maxCode[17] = 0x7fffffff;
  return { maxCode, valPtr, minCode, values };
}

export interface SequentialJpeg {
  width: number;
  height: number;
  precision: number;
  /** 1 or 3 (3 only without subsampling). */
  components: number;
  /** Samples row-major, components interleaved, without any colour transform. */
  samples: Uint16Array;
}

/**
 * Whether pydicom would take this 3-component JPEG's samples without any colour transform, and our decoder can:
 * pydicom asks Pillow for the raw components unless an Adobe APP14 marker requests a transform; the DICOM
 * Photometric Interpretation then says what they are (RGB as is, YBR_FULL converted by pydicom's matrix).
 * Only without subsampling, which is all this decoder supports.
 */
export function jpegWantsRawComponents(data: Uint8Array): boolean {
  let at = 2;
  let adobeTransform: number | null = null;
  while (at + 4 < data.length && data[at] === 0xff) {
    const marker = data[at + 1];
    const length = (data[at + 2] << 8) | data[at + 3];
    if (marker === 0xee && length >= 12 && String.fromCharCode(...data.subarray(at + 4, at + 9)) === 'Adobe') {
      adobeTransform = data[at + 15];
    }
    if (marker === 0xc0 || marker === 0xc1) {
      if (at + 17 >= data.length || data[at + 9] !== 3) return false;
      const unsampled = data[at + 11] === 0x11 && data[at + 14] === 0x11 && data[at + 17] === 0x11;
      return unsampled && (adobeTransform === null || adobeTransform === 0);
    }
    if (marker === 0xda) return false;
    at += 2 + length;
  }
  return false;
}

export function decodeSequentialJpeg(data: Uint8Array): SequentialJpeg {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) throw new Error('not a JPEG stream (no SOI marker)');
  const quant: Array<Int32Array | undefined> = [];
  const dcTables: Array<Huffman | undefined> = [];
  const acTables: Array<Huffman | undefined> = [];
  interface Component {
    id: number;
    quantTable: number;
    coefficients: Int32Array;
  }
  let frame: { precision: number; width: number; height: number; components: Component[] } | null = null;
  let restartInterval = 0;
  let blocksPerLine = 0;
  let blocksPerColumn = 0;
  let at = 2;
  const u16 = (p: number) => {
    if (p + 1 >= data.length) throw new Error('JPEG stream ends inside a marker segment');
    return (data[p] << 8) | data[p + 1];
  };
  while (at < data.length) {
    if (data[at] !== 0xff) {
      at++;
      continue;
    }
    const marker = data[at + 1];
    if (marker === 0xff) {
      at++;
      continue;
    }
    at += 2;
    if (marker === 0xd9) break; // EOI
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    const length = u16(at);
    const end = at + length;
    if (length < 2 || end > data.length)
      throw new Error(`JPEG marker FF${marker.toString(16)} segment overruns the stream`);
    const body = at + 2;
    switch (marker) {
      case 0xdb: {
        let p = body;
        while (p < end) {
          const pq = data[p] >> 4;
          const tq = data[p] & 15;
          p++;
          const table = new Int32Array(64);
          for (let i = 0; i < 64; i++) {
            table[ZIGZAG[i]] = pq ? u16(p + 2 * i) : data[p + i];
          }
          p += pq ? 128 : 64;
          if (tq > 3) throw new Error('JPEG quantization table id > 3');
          quant[tq] = table;
        }
        break;
      }
      case 0xc4: {
        let p = body;
        while (p < end) {
          const tc = data[p] >> 4;
          const th = data[p] & 15;
          const counts = data.subarray(p + 1, p + 17);
          let total = 0;
          for (const c of counts) total += c;
          if (p + 17 + total > end || th > 3) throw new Error('JPEG Huffman table overruns its segment');
          const table = buildHuffman(counts, data.slice(p + 17, p + 17 + total));
          if (tc === 0) dcTables[th] = table;
          else acTables[th] = table;
          p += 17 + total;
        }
        break;
      }
      case 0xc0:
      case 0xc1: {
        const count = data[body + 5];
        if (count !== 1 && count !== 3) throw new Error(`JPEG with ${count} components is not supported here`);
        const height = u16(body + 1);
        const width = u16(body + 3);
        if (width === 0 || height === 0) throw new Error('JPEG frame with zero width or height (DNL unsupported)');
        blocksPerLine = Math.ceil(width / 8);
        blocksPerColumn = Math.ceil(height / 8);
        const components: Component[] = [];
        for (let c = 0; c < count; c++) {
          const at3 = body + 6 + 3 * c;
          if (data[at3 + 1] !== 0x11) throw new Error('subsampled JPEG components are not supported here');
          components.push({
            id: data[at3],
            quantTable: data[at3 + 2],
            coefficients: new Int32Array(blocksPerLine * blocksPerColumn * 64),
          });
        }
        frame = { precision: data[body], height, width, components };
        if (frame.precision !== 8 && frame.precision !== 12) throw new Error(`JPEG precision ${frame.precision}`);
        break;
      }
      case 0xc2:
      case 0xc3:
      case 0xc5:
      case 0xc6:
      case 0xc7:
      case 0xc9:
      case 0xca:
      case 0xcb:
      case 0xcd:
      case 0xce:
      case 0xcf:
        throw new Error(`JPEG process SOF${marker - 0xc0} is not sequential Huffman`);
      case 0xdd:
        restartInterval = u16(body);
        break;
      case 0xda: {
        if (!frame) throw new Error('JPEG scan before the frame header');
        const count = data[body];
        const scan: ScanComponent[] = [];
        for (let c = 0; c < count; c++) {
          const id = data[body + 1 + 2 * c];
          const tables = data[body + 2 + 2 * c];
          const component = frame.components.find((candidate) => candidate.id === id);
          const dc = dcTables[tables >> 4];
          const ac = acTables[tables & 15];
          if (!component || !dc || !ac) throw new Error('JPEG scan refers to a missing component or Huffman table');
          scan.push({ coefficients: component.coefficients, dc, ac });
        }
        at = decodeScan(data, end, scan, blocksPerLine * blocksPerColumn, restartInterval);
        continue;
      }
      default:
        break;
    }
    at = end;
  }
  if (!frame) throw new Error('JPEG stream has no frame header');
  const { width, height, components } = frame;
  const n = components.length;
  const samples = new Uint16Array(width * height * n);
  const block = new Int32Array(64);
  const idct = new IslowIdct(frame.precision);
  for (let c = 0; c < n; c++) {
    const table = quant[components[c].quantTable];
    if (!table) throw new Error('JPEG frame refers to a missing quantization table');
    for (let by = 0; by < blocksPerColumn; by++) {
      for (let bx = 0; bx < blocksPerLine; bx++) {
        idct.run(components[c].coefficients, (by * blocksPerLine + bx) * 64, table, block);
        for (let y = 0; y < 8; y++) {
          const row = by * 8 + y;
          if (row >= height) break;
          for (let x = 0; x < 8; x++) {
            const column = bx * 8 + x;
            if (column < width) samples[(row * width + column) * n + c] = block[y * 8 + x];
          }
        }
      }
    }
  }
  return { width, height, precision: frame.precision, components: n, samples };
}

interface ScanComponent {
  coefficients: Int32Array;
  dc: Huffman;
  ac: Huffman;
}

/** Decodes one non-interleaved scan into `coefficients`; returns the stream position after the scan. */
function decodeScan(
  data: Uint8Array,
  start: number,
  scan: ScanComponent[],
  blocks: number,
  restartInterval: number,
): number {
  let pos = start;
  let buffer = 0;
  let bits = 0;
  const readBit = (): number => {
    if (bits === 0) {
      // A complete stream never needs bits past its entropy-coded data: running into a marker or the end
      // means the data are cut short (libjpeg would pad with zeros and warn; we refuse).
      if (pos >= data.length) throw new Error('JPEG entropy-coded data end before the image is complete');
      buffer = data[pos];
      if (buffer === 0xff) {
        if (data[pos + 1] !== 0) throw new Error('JPEG entropy-coded data hit a marker before the image is complete');
        pos += 2;
      } else pos++;
      bits = 8;
    }
    bits--;
    return (buffer >> bits) & 1;
  };
  const receive = (length: number): number => {
    let v = 0;
    for (let i = 0; i < length; i++) v = (v << 1) | readBit();
    return v;
  };
  const extend = (v: number, length: number): number => (v < 1 << (length - 1) ? v - (1 << length) + 1 : v);
  const decodeHuffman = (table: Huffman): number => {
    let code = readBit();
    let length = 1;
    while (code > table.maxCode[length]) {
      code = (code << 1) | readBit();
      length++;
      if (length > 16) throw new Error('corrupt JPEG Huffman code');
    }
    return table.values[table.valPtr[length] + code - table.minCode[length]];
  };
  const predictions = new Float64Array(scan.length);
  for (let n = 0; n < blocks; n++) {
    if (restartInterval > 0 && n > 0 && n % restartInterval === 0) {
      // Skip to the RSTn marker and restart the bit reader and DC predictions.
      bits = 0;
      while (pos + 1 < data.length && !(data[pos] === 0xff && data[pos + 1] >= 0xd0 && data[pos + 1] <= 0xd7)) pos++;
      pos += 2;
      predictions.fill(0);
    }
    const offset = n * 64;
    // All components have 1x1 sampling, so an MCU holds one block of each scan component, in scan order.
    for (let c = 0; c < scan.length; c++) {
      const { coefficients, dc, ac } = scan[c];
      const s = decodeHuffman(dc);
      if (s > 16) throw new Error('corrupt JPEG DC magnitude');
      predictions[c] += s === 0 ? 0 : extend(receive(s), s);
      coefficients[offset] = predictions[c];
      for (let k = 1; k < 64; ) {
        const rs = decodeHuffman(ac);
        const r = rs >> 4;
        const size = rs & 15;
        if (size === 0) {
          if (r !== 15) break;
          k += 16;
          continue;
        }
        k += r;
        if (k > 63) throw new Error('corrupt JPEG AC run');
        coefficients[offset + ZIGZAG[k]] = extend(receive(size), size);
        k++;
      }
    }
  }
  // Continue the marker walk after the entropy-coded data.
  while (
    pos + 1 < data.length &&
    !(data[pos] === 0xff && data[pos + 1] !== 0 && !(data[pos + 1] >= 0xd0 && data[pos + 1] <= 0xd7))
  )
    pos++;
  return pos;
}

const CONST_BITS = 13;
const FIX_0_298631336 = 2446;
const FIX_0_390180644 = 3196;
const FIX_0_541196100 = 4433;
const FIX_0_765366865 = 6270;
const FIX_0_899976223 = 7373;
const FIX_1_175875602 = 9633;
const FIX_1_501321110 = 12299;
const FIX_1_847759065 = 15137;
const FIX_1_961570560 = 16069;
const FIX_2_053119869 = 16819;
const FIX_2_562915447 = 20995;
const FIX_3_072711026 = 25172;

/** Arithmetic right shift with rounding, exact for any safe integer (libjpeg's DESCALE on a 64-bit JLONG). */
function descale(x: number, n: number): number {
  return Math.floor((x + 2 ** (n - 1)) / 2 ** n);
}

/** libjpeg jidctint.c (islow) with the post-IDCT range-limit table of jdmaster.c. */
class IslowIdct {
  private readonly pass1Bits: number;
  private readonly maxSample: number;
  private readonly center: number;
  private readonly rangeMask: number;
  private readonly workspace = new Float64Array(64);

  constructor(precision: number) {
    this.pass1Bits = precision === 12 ? 1 : 2;
    this.maxSample = 2 ** precision - 1;
    this.center = 2 ** (precision - 1);
    this.rangeMask = 4 * (this.maxSample + 1) - 1;
  }

  private limit(value: number): number {
    // Post-IDCT table indexed by (value & RANGE_MASK): [0, N−C) → value + C, up to 2N → MAX, up to 4N−C → 0, rest wraps.
    const n = this.maxSample + 1;
    const index = value & this.rangeMask;
    if (index < n - this.center) return index + this.center;
    if (index < 2 * n) return this.maxSample;
    if (index < 4 * n - this.center) return 0;
    return index - (4 * n - this.center);
  }

  run(coefficients: Int32Array, offset: number, quant: Int32Array, out: Int32Array): void {
    const ws = this.workspace;
    const p1 = this.pass1Bits;
    for (let col = 0; col < 8; col++) {
      const q = (row: number) => coefficients[offset + row * 8 + col] * quant[row * 8 + col];
      let z2 = q(2);
      let z3 = q(6);
      let z1 = (z2 + z3) * FIX_0_541196100;
      let tmp2 = z1 + z3 * -FIX_1_847759065;
      let tmp3 = z1 + z2 * FIX_0_765366865;
      z2 = q(0);
      z3 = q(4);
      let tmp0 = (z2 + z3) * 2 ** CONST_BITS;
      let tmp1 = (z2 - z3) * 2 ** CONST_BITS;
      const tmp10 = tmp0 + tmp3;
      const tmp13 = tmp0 - tmp3;
      const tmp11 = tmp1 + tmp2;
      const tmp12 = tmp1 - tmp2;
      tmp0 = q(7);
      tmp1 = q(5);
      tmp2 = q(3);
      tmp3 = q(1);
      z1 = tmp0 + tmp3;
      z2 = tmp1 + tmp2;
      z3 = tmp0 + tmp2;
      let z4 = tmp1 + tmp3;
      const z5 = (z3 + z4) * FIX_1_175875602;
      tmp0 *= FIX_0_298631336;
      tmp1 *= FIX_2_053119869;
      tmp2 *= FIX_3_072711026;
      tmp3 *= FIX_1_501321110;
      z1 *= -FIX_0_899976223;
      z2 *= -FIX_2_562915447;
      z3 = z3 * -FIX_1_961570560 + z5;
      z4 = z4 * -FIX_0_390180644 + z5;
      tmp0 += z1 + z3;
      tmp1 += z2 + z4;
      tmp2 += z2 + z3;
      tmp3 += z1 + z4;
      const shift = CONST_BITS - p1;
      ws[col] = descale(tmp10 + tmp3, shift);
      ws[56 + col] = descale(tmp10 - tmp3, shift);
      ws[8 + col] = descale(tmp11 + tmp2, shift);
      ws[48 + col] = descale(tmp11 - tmp2, shift);
      ws[16 + col] = descale(tmp12 + tmp1, shift);
      ws[40 + col] = descale(tmp12 - tmp1, shift);
      ws[24 + col] = descale(tmp13 + tmp0, shift);
      ws[32 + col] = descale(tmp13 - tmp0, shift);
    }
    const shift = CONST_BITS + p1 + 3;
    for (let row = 0; row < 8; row++) {
      const w = row * 8;
      let z2 = ws[w + 2];
      let z3 = ws[w + 6];
      let z1 = (z2 + z3) * FIX_0_541196100;
      let tmp2 = z1 + z3 * -FIX_1_847759065;
      let tmp3 = z1 + z2 * FIX_0_765366865;
      let tmp0 = (ws[w] + ws[w + 4]) * 2 ** CONST_BITS;
      let tmp1 = (ws[w] - ws[w + 4]) * 2 ** CONST_BITS;
      const tmp10 = tmp0 + tmp3;
      const tmp13 = tmp0 - tmp3;
      const tmp11 = tmp1 + tmp2;
      const tmp12 = tmp1 - tmp2;
      tmp0 = ws[w + 7];
      tmp1 = ws[w + 5];
      tmp2 = ws[w + 3];
      tmp3 = ws[w + 1];
      z1 = tmp0 + tmp3;
      z2 = tmp1 + tmp2;
      z3 = tmp0 + tmp2;
      let z4 = tmp1 + tmp3;
      const z5 = (z3 + z4) * FIX_1_175875602;
      tmp0 *= FIX_0_298631336;
      tmp1 *= FIX_2_053119869;
      tmp2 *= FIX_3_072711026;
      tmp3 *= FIX_1_501321110;
      z1 *= -FIX_0_899976223;
      z2 *= -FIX_2_562915447;
      z3 = z3 * -FIX_1_961570560 + z5;
      z4 = z4 * -FIX_0_390180644 + z5;
      tmp0 += z1 + z3;
      tmp1 += z2 + z4;
      tmp2 += z2 + z3;
      tmp3 += z1 + z4;
      out[w] = this.limit(descale(tmp10 + tmp3, shift));
      out[w + 7] = this.limit(descale(tmp10 - tmp3, shift));
      out[w + 1] = this.limit(descale(tmp11 + tmp2, shift));
      out[w + 6] = this.limit(descale(tmp11 - tmp2, shift));
      out[w + 2] = this.limit(descale(tmp12 + tmp1, shift));
      out[w + 5] = this.limit(descale(tmp12 - tmp1, shift));
      out[w + 3] = this.limit(descale(tmp13 + tmp0, shift));
      out[w + 4] = this.limit(descale(tmp13 - tmp0, shift));
    }
  }
}
