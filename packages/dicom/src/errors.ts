import { FedcxrError } from '@fedcxr/base';

/**
 * Why a DICOM file could not be read. Stable strings: the CLI prints them and batch manifests list them.
 * - `not_dicom`: neither a Part 10 file (DICM at 128) nor a plausible ACR-NEMA data set.
 * - `truncated`: the data set or the pixel data ends before its declared length.
 * - `no_pixel_data`: a valid DICOM object without an image (RT plan, structured report, ...).
 * - `unsupported_transfer_syntax`: pixels are encoded in a transfer syntax we have no decoder for (named).
 * - `corrupt_pixel_data`: the compressed stream could not be decoded, or decoded to the wrong size.
 * - `invalid_header`: an attribute needed to interpret the pixels is missing or malformed.
 * - `unsupported_pixel_format`: a valid but unsupported pixel layout (e.g. float pixel data).
 * - `read_failed`: the file itself could not be read (missing, permissions).
 */
export type DicomErrorCode =
  | 'not_dicom'
  | 'truncated'
  | 'no_pixel_data'
  | 'unsupported_transfer_syntax'
  | 'corrupt_pixel_data'
  | 'invalid_header'
  | 'unsupported_pixel_format'
  | 'read_failed';

export class DicomError extends FedcxrError {
  declare readonly code: DicomErrorCode;

  constructor(code: DicomErrorCode, message: string, options: { file?: string; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'DicomError';
  }
}

/** Message of anything thrown, including the bare strings and numbers dicom-parser and emscripten throw. */
export function thrownMessage(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message;
  if (typeof thrown === 'string') return thrown;
  if (typeof thrown === 'number') return `native decoder aborted (code ${thrown})`;
  if (thrown && typeof thrown === 'object' && 'exception' in thrown) {
    return thrownMessage((thrown as { exception: unknown }).exception);
  }
  return String(thrown);
}
