/**
 * Atomic writes of files that hold secrets or federation state: the temporary file is opened with its final
 * mode (0600 by default), so the content is never readable by others, not even between write and rename
 * (a write-then-chmod leaves a window where a 0644 key is on disk). Directories are made 0700.
 */
import { writeFileAtomic } from '@fedcxr/core';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

export async function writePrivateFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode: number = PRIVATE_FILE_MODE,
): Promise<void> {
  await writeFileAtomic(path, data, { mode, dirMode: PRIVATE_DIR_MODE });
}

export async function writePrivateJsonAtomic(path: string, value: unknown): Promise<void> {
  await writePrivateFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}
