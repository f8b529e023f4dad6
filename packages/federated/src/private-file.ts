/**
 * Atomic writes of files that hold secrets or federation state: the temporary file is opened with its final
 * mode (0600 by default), so the content is never readable by others, not even between write and rename
 * (a write-then-chmod leaves a window where a 0644 key is on disk). Directories are made 0700.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

export async function writePrivateFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode: number = PRIVATE_FILE_MODE,
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // 'wx': never follow or reuse an existing file; `mode` applies at creation (before any byte is written).
    const handle = await open(tmp, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  }
}

export async function writePrivateJsonAtomic(path: string, value: unknown): Promise<void> {
  await writePrivateFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}
