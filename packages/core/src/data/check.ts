/**
 * `check`: every problem of a COCO dataset with its location — what validateCoco finds (dangling ids,
 * duplicate ids and file names, empty boxes, boxes outside images, unknown categories, duplicate boxes),
 * plus, on disk: missing image files, files whose real size differs from width/height, identical image
 * files under two names, and images without a patient_id (patient-level splits need it).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { FedcxrError, rasterSize } from '@fedcxr/base';
import type { CocoDataset } from '../coco.js';
import { validateCoco } from './coco-validate.js';
import { type DatasetIssue, issueAt } from './source.js';

export interface CheckResult {
  file: string;
  /** Null when the file is not usable COCO at all (the issues say why). */
  dataset: CocoDataset | null;
  issues: DatasetIssue[];
  errors: number;
  warnings: number;
}

export async function checkDataset(file: string, options: { imagesDir?: string } = {}): Promise<CheckResult> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    const message = (error as Error).message;
    if ((error as NodeJS.ErrnoException).code)
      throw new FedcxrError('file_unreadable', `cannot read: ${message}`, { file });
    return finish(file, null, [issueAt('error', 'invalid_json', file, undefined, `not valid JSON: ${message}`)]);
  }
  const { dataset, issues } = validateCoco(value, file);
  if (dataset === null) return finish(file, null, issues);
  const imagesDir = options.imagesDir ?? dirname(file);
  const digests = new Map<string, string>();
  for (const [index, image] of dataset.images.entries()) {
    if (typeof image.file_name !== 'string' || image.file_name === '') continue;
    const item = `images[${index}] (id ${image.id})`;
    if (typeof image.patient_id !== 'string' || image.patient_id === '') {
      issues.push(
        issueAt(
          'warning',
          'missing_patient',
          file,
          undefined,
          'no patient_id: a patient split treats it as its own patient',
          item,
        ),
      );
    }
    const path = isAbsolute(image.file_name) ? image.file_name : join(imagesDir, image.file_name);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch {
      issues.push(
        issueAt('error', 'missing_file', file, undefined, `image file ${path} does not exist or cannot be read`, item),
      );
      continue;
    }
    const size = rasterSize(bytes);
    if (size === null) {
      issues.push(
        issueAt('warning', 'unchecked_size', file, undefined, `${path} is not PNG or JPEG: size not checked`, item),
      );
    } else if (size.width !== image.width || size.height !== image.height) {
      issues.push(
        issueAt(
          'error',
          'size_mismatch',
          file,
          undefined,
          `says ${image.width}x${image.height} but ${path} is ${size.width}x${size.height}`,
          item,
        ),
      );
    }
    const digest = createHash('sha1').update(bytes).digest('hex');
    const twin = digests.get(digest);
    if (twin !== undefined) {
      issues.push(issueAt('warning', 'duplicate_content', file, undefined, `same pixels file as ${twin}`, item));
    } else digests.set(digest, `images[${index}] "${image.file_name}"`);
  }
  return finish(file, dataset, issues);
}

function finish(file: string, dataset: CocoDataset | null, issues: DatasetIssue[]): CheckResult {
  const errors = issues.filter((i) => i.severity === 'error').length;
  return { file, dataset, issues, errors, warnings: issues.length - errors };
}
