import { createRequire } from 'node:module';

/**
 * The WebAssembly decoders (Cornerstone's builds of libjpeg-turbo, CharLS and OpenJPEG) and the pure-JS
 * JPEG lossless decoder. Each wasm module is instantiated once, lazily; a module that threw is dropped and
 * re-instantiated on next use, because an aborted emscripten module is not safe to call again.
 */
const require = createRequire(import.meta.url);

/** Shape shared by the three embind decoder classes. */
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean };
  delete(): void;
}
type WasmModule = Record<string, new () => WasmDecoder>;

export interface DecodedFrame {
  width: number;
  height: number;
  bitsPerSample: number;
  components: number;
  signed: boolean;
  /** How `bytes` holds each sample: 1 byte, or 2 bytes little endian. */
  bytesPerSample: 1 | 2;
  /** Components as stored, without the codec's colour transform (our own JPEG decoder). */
  raw?: boolean;
  /** Interleaved samples: owned by the caller, except in decodeWithWasmView's callback (a view, valid during it). */
  bytes: Uint8Array;
}

type CodecName = 'libjpeg-turbo' | 'charls' | 'openjpeg';
const specs: Record<CodecName, { module: string; className: string }> = {
  'libjpeg-turbo': { module: '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs', className: 'JPEGDecoder' },
  charls: { module: '@cornerstonejs/codec-charls/decodewasmjs', className: 'JpegLSDecoder' },
  openjpeg: { module: '@cornerstonejs/codec-openjpeg/decodewasmjs', className: 'J2KDecoder' },
};
const loaded = new Map<CodecName, Promise<WasmModule>>();

function load(name: CodecName): Promise<WasmModule> {
  let module = loaded.get(name);
  if (!module) {
    const factory = require(specs[name].module) as (overrides: object) => Promise<WasmModule>;
    // OpenJPEG prints "[INFO] ..." through printf; keep stdout clean for `--json` output.
    module = factory({ print: () => {}, printErr: () => {} });
    loaded.set(name, module);
  }
  return module;
}

/** Instantiates every codec now, so that the first decode is not slowed (and benchmarks measure decoding). */
export async function preloadCodecs(): Promise<void> {
  await Promise.all((Object.keys(specs) as CodecName[]).map(load));
}

/**
 * Decodes and hands the frame to `take` while its `bytes` still view the decoder's own memory (valid only during
 * that call, synchronously): a caller that converts the samples anyway saves a copy of the frame. An error thrown
 * by `take` is passed on and leaves the module in use; one thrown by the decoder drops it (see above).
 */
export async function decodeWithWasmView<T>(
  name: CodecName,
  encoded: Uint8Array,
  take: (frame: DecodedFrame) => T,
): Promise<T> {
  const module = await load(name);
  const decoder = new module[specs[name].className]();
  let frame: DecodedFrame;
  try {
    decoder.getEncodedBuffer(encoded.length).set(encoded);
    decoder.decode();
    const info = decoder.getFrameInfo();
    frame = {
      width: info.width,
      height: info.height,
      bitsPerSample: info.bitsPerSample,
      components: info.componentCount,
      signed: info.isSigned,
      bytesPerSample: info.bitsPerSample > 8 ? 2 : 1,
      bytes: decoder.getDecodedBuffer(),
    };
  } catch (thrown) {
    loaded.delete(name);
    release(decoder);
    throw thrown;
  }
  try {
    return take(frame);
  } finally {
    release(decoder);
  }
}

function release(decoder: WasmDecoder): void {
  try {
    decoder.delete();
  } catch {
    // The module aborted; it is already dropped.
  }
}

interface LosslessDecoder {
  decode(buffer: ArrayBuffer, offset: number, length: number, numBytes: number): Uint8Array | Uint16Array;
}
let losslessDecoderClass: (new () => LosslessDecoder) | null = null;

/** JPEG lossless (process 14) via jpeg-lossless-decoder-js; returns samples as decoded (up to 16 bits). */
export async function decodeJpegLossless(
  encoded: Uint8Array,
  bytesPerSample: number,
): Promise<Uint8Array | Uint16Array> {
  if (!losslessDecoderClass) {
    // The package ships no type declarations; it is loaded through require and typed here.
    const module = require('jpeg-lossless-decoder-js') as { Decoder: new () => LosslessDecoder };
    losslessDecoderClass = module.Decoder;
  }
  // A real copy: for a Buffer, slice() is only a view, and the decoder reads from the ArrayBuffer start.
  const copy = new Uint8Array(encoded);
  return new losslessDecoderClass().decode(copy.buffer, 0, copy.length, bytesPerSample);
}
