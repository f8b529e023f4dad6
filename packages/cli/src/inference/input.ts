/**
 * What `cxr predict` and `cxr explain` feed the detector: any input file (DICOM, PNG, JPEG) prepared the way
 * the model's training images were (the dataset importer's intensity preset and size, recorded in the model
 * card), plus the mapping of boxes back to the ORIGINAL file's pixels and, for DICOM, the source image's
 * identity (for a Structured Report next to the study).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import {
  type DetectorImage,
  decodeGreyRaster,
  FedcxrError,
  normalizationPreset,
  sniffRasterFormat,
} from '@fedcxr/core';
import {
  type Box,
  boxToOriginal,
  type DicomHeader,
  normalize,
  normalizeResized,
  type PresetName,
  type ResizeTransform,
  readDicom,
  type SrSourceImage,
} from '@fedcxr/dicom';

/** How the model's training images were made from source files. */
export interface InputPreparation {
  /** DICOM intensity preset (seed, window, scb, minmax). */
  preset: PresetName;
  /** Longer side the importer resized to (null: kept at full size). */
  size: number | null;
  letterbox: boolean;
}

export interface PreparedInput {
  file: string;
  kind: 'dicom' | 'png' | 'jpeg';
  image: DetectorImage;
  originalWidth: number;
  originalHeight: number;
  /** Maps a box in the prepared image's pixels to the original file's pixels. */
  toOriginal(box: Box): Box;
  /** For DICOM inputs: the identity a Structured Report must reference. */
  source?: SrSourceImage;
  /** For DICOM inputs: the header (display settings for a presentation state, say). */
  dicomHeader?: DicomHeader;
}

/**
 * Reads the preparation from a model card: `preprocessing.dicom` ({preset, size, letterbox}) when the card has
 * it, else the training dataset's import settings recorded in the recipe, else the seed's preset at full size.
 */
export function preparationFromCard(card: unknown): InputPreparation {
  const record = (card ?? {}) as Record<string, unknown>;
  const pre = (record.preprocessing ?? {}) as Record<string, unknown>;
  const dicom = (pre.dicom ?? {}) as Record<string, unknown>;
  // A typed preset name (older cards' 'seed-log' reads as 'seed'); anything else falls back to the seed's.
  const preset: PresetName = normalizationPreset(dicom.preset ?? pre.normalization) ?? 'seed';
  const size = typeof dicom.size === 'number' ? dicom.size : typeof pre.inputSize === 'number' ? pre.inputSize : null;
  const letterbox = typeof dicom.letterbox === 'boolean' ? dicom.letterbox : false;
  return { preset, size, letterbox };
}

const IMAGE_EXTENSIONS = new Set(['.dcm', '.dicom', '.png', '.jpg', '.jpeg', '']);

/** Expands files and folders (recursively) into the input files, sorted; folders keep only image-like files. */
export async function collectInputs(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string, explicit: boolean): Promise<void> => {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch {
      throw new FedcxrError('input_missing', 'no such file or folder', { file: path });
    }
    if (info.isDirectory()) {
      const entries = (await readdir(path)).sort();
      for (const entry of entries) if (!entry.startsWith('.')) await walk(join(path, entry), false);
    } else if (explicit || IMAGE_EXTENSIONS.has(extname(path).toLowerCase())) {
      out.push(path);
    }
  };
  for (const path of paths) await walk(path, true);
  return out;
}

const identity = (box: Box): Box => box;

/** Prepares one file for the detector; errors name the file and say what is wrong. */
export async function prepareInput(file: string, preparation: InputPreparation): Promise<PreparedInput> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new FedcxrError('input_unreadable', `cannot read: ${(error as Error).message}`, { file });
  }
  return prepareInputBytes(file, bytes, preparation);
}

/** Prepares an image already in memory (a DICOM retrieved from a PACS, say); `file` names it in errors. */
export async function prepareInputBytes(
  file: string,
  bytes: Uint8Array,
  preparation: InputPreparation,
): Promise<PreparedInput> {
  const raster = sniffRasterFormat(bytes);
  if (raster) {
    const grey = decodeGreyRaster(bytes, file);
    const max = grey.bitDepth === 16 ? 65535 : 255;
    const pixels = Float32Array.from(grey.data, (v) => v / max);
    return {
      file,
      kind: raster,
      image: { pixels, width: grey.width, height: grey.height, channels: 1 },
      originalWidth: grey.width,
      originalHeight: grey.height,
      toOriginal: identity,
    };
  }
  const dicom = await readDicom(bytes, { file });
  const { header } = dicom;
  let pixels: Float32Array;
  let width: number;
  let height: number;
  let transform: ResizeTransform | null = null;
  if (preparation.size) {
    const resized = normalizeResized(dicom, preparation.preset, preparation.size, { letterbox: preparation.letterbox });
    ({ data: pixels, width, height } = resized);
    transform = resized.transform;
  } else {
    ({ data: pixels, width, height } = normalize(dicom, preparation.preset));
  }
  const frame = dicom.frames[0];
  const source: SrSourceImage | undefined =
    header.studyInstanceUid && header.sopInstanceUid && header.sopClassUid
      ? {
          studyInstanceUid: header.studyInstanceUid,
          seriesInstanceUid: header.seriesInstanceUid ?? undefined,
          sopInstanceUid: header.sopInstanceUid,
          sopClassUid: header.sopClassUid,
          patientId: header.patientId ?? undefined,
        }
      : undefined;
  const mapping = transform;
  return {
    file,
    kind: 'dicom',
    image: { pixels, width, height, channels: 1 },
    originalWidth: frame.columns,
    originalHeight: frame.rows,
    toOriginal: mapping ? (box) => boxToOriginal(box, mapping) : identity,
    source,
    dicomHeader: header,
  };
}
