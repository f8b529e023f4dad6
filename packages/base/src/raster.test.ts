import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FedcxrError } from './errors.js';
import {
  decodeGreyRaster,
  decodeRaster,
  encodeGreyJpeg,
  encodeGreyPng,
  type GreyRaster,
  readGreyRaster,
  readRaster,
  sniffRasterFormat,
  writeGreyRaster,
} from './raster.js';

// Written and decoded by Pillow (libpng/libjpeg): tools/reference/dataset_raster_fixtures.py.
const fixtures = fileURLToPath(new URL('../../../tools/reference/fixtures/dataset/raster/', import.meta.url));
const expected = JSON.parse(await readFile(join(fixtures, 'expected.json'), 'utf8')) as Record<string, unknown>;
const list = (key: string) => expected[key] as number[];
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
};

const scratch = await mkdtemp(join(tmpdir(), 'fedcxr-raster-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('reading files written by Pillow', () => {
  it('8-bit grey PNG', async () => {
    const image = await readRaster(join(fixtures, 'grey8.png'));
    expect(image).toMatchObject({ width: 17, height: 12, channels: 1, bitDepth: 8 });
    expect(Array.from(image.data)).toEqual(list('grey8.png'));
  });

  it('16-bit grey PNG keeps all 16 bits', async () => {
    const image = await readRaster(join(fixtures, 'grey16.png'));
    expect(image).toMatchObject({ channels: 1, bitDepth: 16 });
    expect(image.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(image.data)).toEqual(list('grey16.png'));
  });

  it('RGB PNG, kept and converted to grey like Pillow', async () => {
    const image = await readRaster(join(fixtures, 'rgb8.png'));
    expect(image.channels).toBe(3);
    expect(Array.from(image.data)).toEqual(list('rgb8.png'));
    const grey = await readGreyRaster(join(fixtures, 'rgb8.png'));
    expect(grey.channels).toBe(1);
    expect(maxAbsDiff(grey.data, list('rgb8.png:L'))).toBeLessThanOrEqual(1);
  });

  it('grey+alpha PNG keeps both channels, grey drops alpha', async () => {
    const image = await readRaster(join(fixtures, 'grey_alpha.png'));
    expect(image.channels).toBe(2);
    expect(Array.from(image.data)).toEqual(list('grey_alpha.png'));
    const grey = await readGreyRaster(join(fixtures, 'grey_alpha.png'));
    expect(Array.from(grey.data)).toEqual(list('grey8.png'));
  });

  it('grey and colour JPEG decode close to libjpeg', async () => {
    const grey = await readRaster(join(fixtures, 'grey.jpg'));
    expect(expected['grey.jpg:mode']).toBe('L');
    expect(grey).toMatchObject({ width: 17, height: 12, channels: 1, bitDepth: 8 });
    // Two IDCT implementations: equal within rounding.
    expect(maxAbsDiff(grey.data, list('grey.jpg'))).toBeLessThanOrEqual(2);
    const colour = await readRaster(join(fixtures, 'rgb.jpg'));
    expect(colour.channels).toBe(3);
    expect(maxAbsDiff((await readGreyRaster(join(fixtures, 'rgb.jpg'))).data, list('rgb.jpg:L'))).toBeLessThanOrEqual(
      3,
    );
  });
});

describe('writing grey images', () => {
  const ramp = (bits: 8 | 16): GreyRaster => {
    const width = 31;
    const height = 9;
    const data = bits === 16 ? new Uint16Array(width * height) : new Uint8Array(width * height);
    for (let i = 0; i < data.length; i++) data[i] = bits === 16 ? (i * 211) % 65536 : (i * 7) % 256;
    return { width, height, channels: 1, bitDepth: bits, data };
  };

  it('8-bit PNG round-trips exactly', () => {
    const image = ramp(8);
    const back = decodeRaster(encodeGreyPng(image));
    expect(back).toMatchObject({ width: 31, height: 9, channels: 1, bitDepth: 8 });
    expect(Array.from(back.data)).toEqual(Array.from(image.data));
  });

  it('16-bit PNG round-trips exactly, also from a subarray view', () => {
    const image = ramp(16);
    const padded = new Uint16Array(image.data.length + 5);
    padded.set(image.data, 5);
    const view: GreyRaster = { ...image, data: padded.subarray(5) };
    const back = decodeRaster(encodeGreyPng(view));
    expect(back.bitDepth).toBe(16);
    expect(Array.from(back.data)).toEqual(Array.from(image.data));
  });

  it('JPEG is lossy but close, and reads back as grey', async () => {
    const width = 64;
    const height = 48;
    const data = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = x * 3 + y;
    const image: GreyRaster = { width, height, channels: 1, bitDepth: 8, data };
    const path = join(scratch, 'ramp.jpg');
    await writeGreyRaster(path, image, { quality: 95 });
    const back = await readGreyRaster(path);
    expect(sniffRasterFormat(await readFile(path))).toBe('jpeg');
    expect(maxAbsDiff(back.data, data)).toBeLessThanOrEqual(6);
  });

  it('writes PNG by extension and refuses an unknown extension or a wrong sample count', async () => {
    const path = join(scratch, 'a.png');
    await writeGreyRaster(path, ramp(8));
    expect(sniffRasterFormat(await readFile(path))).toBe('png');
    await expect(writeGreyRaster(join(scratch, 'a.bmp'), ramp(8))).rejects.toThrow(/a\.bmp.*extension/);
    expect(() => encodeGreyPng({ ...ramp(8), width: 30 })).toThrow(FedcxrError);
    expect(() => encodeGreyJpeg(ramp(16))).toThrow(/8-bit/);
  });
});

describe('bad input', () => {
  it('names the file when it is not an image, truncated, or missing', async () => {
    expect(() => decodeGreyRaster(new TextEncoder().encode('hello'), 'notes.txt')).toThrow(
      /notes\.txt: not a PNG or JPEG/,
    );
    const png = encodeGreyPng({ width: 20, height: 20, channels: 1, bitDepth: 8, data: new Uint8Array(400) });
    expect(() => decodeRaster(png.subarray(0, 40), 'cut.png')).toThrow(/cut\.png: cannot decode PNG/);
    await expect(readRaster(join(scratch, 'missing.png'))).rejects.toThrow(/missing\.png: cannot read/);
  });
});
