/**
 * Why a DICOMweb request failed. Deliberately not a FedcxrError (the client imports nothing but node:http(s),
 * not even `@fedcxr/base`); it has the same shape (`code`, `message`, `toJSON`) so callers can wrap it. Codes:
 * - `dicomweb_unreachable`: no connection (refused, unknown host, reset, timed out); names the URL.
 * - `dicomweb_tls`: the server's certificate was refused (suggests --ca or --insecure).
 * - `dicomweb_auth`: HTTP 401 or 403 (suggests --user / --token).
 * - `dicomweb_not_found`: HTTP 404, or an unknown study.
 * - `dicomweb_http`: any other HTTP error status (the server's message quoted).
 * - `dicomweb_bad_response`: a body that is not what the standard says (JSON, multipart/related).
 * - `dicomweb_store_failed`: STOW-RS accepted the request but refused the instance (failure reason given).
 */
export type DicomwebErrorCode =
  | 'dicomweb_unreachable'
  | 'dicomweb_tls'
  | 'dicomweb_auth'
  | 'dicomweb_not_found'
  | 'dicomweb_http'
  | 'dicomweb_bad_response'
  | 'dicomweb_store_failed';

export class DicomwebError extends Error {
  readonly code: DicomwebErrorCode;
  /** The request's URL (no credentials in it). */
  readonly url: string | undefined;
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;

  constructor(
    code: DicomwebErrorCode,
    message: string,
    options: { url?: string; status?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'DicomwebError';
    this.code = code;
    this.url = options.url;
    this.status = options.status;
  }

  toJSON(): { code: string; message: string; url?: string; status?: number } {
    return {
      code: this.code,
      message: this.message,
      ...(this.url ? { url: this.url } : {}),
      ...(this.status ? { status: this.status } : {}),
    };
  }
}
