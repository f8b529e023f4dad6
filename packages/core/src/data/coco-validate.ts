/**
 * Validation of COCO detection files, with the exact requirements pycocotools has (COCO(), loadRes,
 * COCOeval) plus sanity: every problem is reported with its place (`annotations[3] (id 17)`), not just
 * the first. pycocotools needs: top-level `images`, `annotations`, `categories` lists; unique image,
 * annotation and category ids; annotation ids ≥ 1 (COCOeval stores matched ground-truth ids in a
 * zero-means-unmatched array); `bbox` [x, y, w, h], `area` and `iscrowd` on every annotation.
 */
import { readFile } from 'node:fs/promises';
import { FedcxrError } from '@fedcxr/base';
import type { CocoAnnotation, CocoCategory, CocoDataset, CocoImage } from '../coco.js';
import { type DatasetIssue, formatIssue, issueAt } from './source.js';

export interface CocoValidation {
  /** The dataset as read (entries with errors included); null when the top level itself is unusable. */
  dataset: CocoDataset | null;
  issues: DatasetIssue[];
}

/** Tolerance for boxes touching the image border after floating-point scaling. */
const EDGE_TOLERANCE = 1e-6;

export function validateCoco(value: unknown, file: string): CocoValidation {
  const issues: DatasetIssue[] = [];
  const error = (code: string, item: string | undefined, message: string): void => {
    issues.push(issueAt('error', code, file, undefined, message, item));
  };
  const warn = (code: string, item: string | undefined, message: string): void => {
    issues.push(issueAt('warning', code, file, undefined, message, item));
  };

  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    error('invalid_coco', undefined, 'the top level must be an object with images, annotations and categories');
    return { dataset: null, issues };
  }
  const top = value as Record<string, unknown>;
  for (const key of ['images', 'annotations', 'categories']) {
    if (!Array.isArray(top[key])) error('invalid_coco', undefined, `"${key}" must be a list`);
  }
  if (issues.length > 0) return { dataset: null, issues };
  const images = top.images as unknown[];
  const annotations = top.annotations as unknown[];
  const categories = top.categories as unknown[];

  const imageById = new Map<number, CocoImage>();
  const fileNames = new Map<string, number>();
  for (const [index, raw] of images.entries()) {
    const image = raw as CocoImage;
    const item = `images[${index}]${isObject(raw) && raw.id !== undefined ? ` (id ${String(raw.id)})` : ''}`;
    if (!isObject(raw)) {
      error('invalid_image', item, 'not an object');
      continue;
    }
    if (!Number.isInteger(image.id)) {
      error('invalid_image', item, 'id must be an integer');
      continue;
    }
    if (imageById.has(image.id)) error('duplicate_id', item, `image id ${image.id} is used twice`);
    if (typeof image.file_name !== 'string' || image.file_name === '') {
      error('invalid_image', item, 'file_name must be a non-empty string');
    } else {
      const first = fileNames.get(image.file_name);
      if (first !== undefined) {
        error('duplicate_file', item, `file_name "${image.file_name}" is also used by images[${first}]`);
      } else fileNames.set(image.file_name, index);
    }
    if (!isPositiveInteger(image.width) || !isPositiveInteger(image.height)) {
      error('invalid_image', item, `width and height must be positive integers, got ${image.width}x${image.height}`);
    }
    if (image.patient_id !== undefined && typeof image.patient_id !== 'string') {
      error('invalid_image', item, 'patient_id must be a string');
    }
    if (!imageById.has(image.id)) imageById.set(image.id, image);
  }

  const categoryIds = new Set<number>();
  const categoryNames = new Set<string>();
  for (const [index, raw] of categories.entries()) {
    const category = raw as CocoCategory;
    const item = `categories[${index}]`;
    if (!isObject(raw)) {
      error('invalid_category', item, 'not an object');
      continue;
    }
    if (!Number.isInteger(category.id)) {
      error('invalid_category', item, 'id must be an integer');
      continue;
    }
    if (categoryIds.has(category.id)) error('duplicate_id', item, `category id ${category.id} is used twice`);
    if (typeof category.name !== 'string' || category.name === '') {
      error('invalid_category', item, 'name must be a non-empty string');
    } else if (categoryNames.has(category.name)) {
      error('duplicate_category', item, `category name "${category.name}" is used twice`);
    }
    categoryIds.add(category.id);
    categoryNames.add(category.name);
  }

  const annotationIds = new Set<number>();
  const seenBoxes = new Map<string, number>();
  for (const [index, raw] of annotations.entries()) {
    const annotation = raw as CocoAnnotation;
    const item = `annotations[${index}]${isObject(raw) && raw.id !== undefined ? ` (id ${String(raw.id)})` : ''}`;
    if (!isObject(raw)) {
      error('invalid_annotation', item, 'not an object');
      continue;
    }
    if (!Number.isInteger(annotation.id) || annotation.id < 1) {
      error('invalid_annotation', item, 'id must be an integer ≥ 1 (pycocotools treats id 0 as "no match")');
    } else if (annotationIds.has(annotation.id)) {
      error('duplicate_id', item, `annotation id ${annotation.id} is used twice`);
    }
    annotationIds.add(annotation.id);
    const image = imageById.get(annotation.image_id);
    if (image === undefined) error('dangling_id', item, `image_id ${String(annotation.image_id)} matches no image`);
    if (!categoryIds.has(annotation.category_id)) {
      error('unknown_category', item, `category_id ${String(annotation.category_id)} matches no category`);
    }
    const box = annotation.bbox;
    if (!Array.isArray(box) || box.length !== 4 || !box.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      error('invalid_box', item, 'bbox must be 4 finite numbers [x, y, width, height]');
      continue;
    }
    const [x, y, w, h] = box;
    if (!(w > 0) || !(h > 0)) error('empty_box', item, `bbox has zero or negative size (width ${w}, height ${h})`);
    if (image !== undefined && isPositiveInteger(image.width) && isPositiveInteger(image.height)) {
      if (
        x < -EDGE_TOLERANCE ||
        y < -EDGE_TOLERANCE ||
        x + w > image.width + EDGE_TOLERANCE ||
        y + h > image.height + EDGE_TOLERANCE
      ) {
        error(
          'box_outside_image',
          item,
          `bbox [${box.join(', ')}] reaches outside image ${image.id} "${image.file_name}" (${image.width}x${image.height})`,
        );
      }
    }
    if (typeof annotation.area !== 'number' || !Number.isFinite(annotation.area) || annotation.area < 0) {
      error('invalid_annotation', item, 'area must be a non-negative number (COCOeval needs it)');
    }
    if (annotation.iscrowd !== 0 && annotation.iscrowd !== 1) {
      error('invalid_annotation', item, 'iscrowd must be 0 or 1 (COCOeval needs it)');
    }
    const key = `${annotation.image_id}|${annotation.category_id}|${box.join(',')}`;
    const twin = seenBoxes.get(key);
    if (twin !== undefined) warn('duplicate_box', item, `same image, category and bbox as annotations[${twin}]`);
    else seenBoxes.set(key, index);
  }

  const dataset: CocoDataset = {
    ...(isObject(top.info) ? { info: top.info as Record<string, unknown> } : {}),
    images: images as CocoImage[],
    annotations: annotations as CocoAnnotation[],
    categories: categories as CocoCategory[],
  };
  return { dataset, issues };
}

/** Reads and validates; throws a FedcxrError listing the errors (up to 20) when there are any. */
export async function readCocoFile(file: string): Promise<{ dataset: CocoDataset; issues: DatasetIssue[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FedcxrError('file_unreadable', `cannot read: ${(error as Error).message}`, { file, cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new FedcxrError('invalid_coco', `not valid JSON: ${(error as Error).message}`, { file, cause: error });
  }
  const { dataset, issues } = validateCoco(value, file);
  const errors = issues.filter((issue) => issue.severity === 'error');
  if (dataset === null || errors.length > 0) throw cocoErrors(file, errors);
  return { dataset, issues };
}

export function cocoErrors(file: string, errors: DatasetIssue[]): FedcxrError {
  const shown = errors.slice(0, 20).map((issue) => `  ${formatIssue(issue).slice(file.length + 2)}`);
  const more = errors.length > 20 ? `\n  ... and ${errors.length - 20} more` : '';
  return new FedcxrError('invalid_coco', `${errors.length} problem(s):\n${shown.join('\n')}${more}`, { file });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}
