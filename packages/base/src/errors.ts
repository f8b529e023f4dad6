/**
 * Every failure the SDK reports on purpose is a FedcxrError: a stable machine-readable `code`, a message a
 * person can act on, and (when a file is involved) the file's path. The CLI prints these without a stack.
 */
export class FedcxrError extends Error {
  readonly code: string;
  readonly file: string | undefined;

  constructor(code: string, message: string, options: { file?: string; cause?: unknown } = {}) {
    super(options.file ? `${options.file}: ${message}` : message, { cause: options.cause });
    this.name = 'FedcxrError';
    this.code = code;
    this.file = options.file;
  }

  toJSON(): { code: string; message: string; file?: string } {
    return this.file
      ? { code: this.code, message: this.message, file: this.file }
      : { code: this.code, message: this.message };
  }
}

/** Turns anything thrown into a FedcxrError, keeping the original as `cause`. */
export function asFedcxrError(error: unknown, fallbackCode = 'internal', file?: string): FedcxrError {
  if (error instanceof FedcxrError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FedcxrError(fallbackCode, message, { file, cause: error });
}
