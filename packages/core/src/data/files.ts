import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { FedcxrError } from '@fedcxr/base';

export const IMAGE_EXTENSIONS = ['.dcm', '.dicom', '.png', '.jpg', '.jpeg'];

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

export function fileStem(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? name;
  const ext = extname(base);
  return ext ? base.slice(0, -ext.length) : base;
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Files under `dir` (recursively), sorted, as paths relative to `dir` with `/` separators. */
export async function listFiles(dir: string, keep: (name: string) => boolean = () => true): Promise<string[]> {
  const out: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(join(dir, relative), { withFileTypes: true });
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(path);
      else if (keep(entry.name)) out.push(path);
    }
  };
  await walk('');
  return out.sort();
}

/**
 * A patient id from a file name: the first capture group of `pattern` (or the whole match) applied to the
 * file's stem; the stem itself without a pattern or when the pattern does not match.
 */
export function patientFromName(path: string, pattern: RegExp | undefined): string {
  const name = fileStem(path);
  if (!pattern) return name;
  const match = pattern.exec(name);
  if (!match) return name;
  return match[1] ?? match[0];
}

export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new FedcxrError('file_unreadable', `cannot read: ${(error as Error).message}`, { file, cause: error });
  }
}
