/**
 * COCO in: validated (dangling ids, empty boxes, boxes outside the image, missing area/iscrowd and the rest:
 * coco-validate.ts), then re-emitted by the import with normalized images. Image files are resolved against
 * `imagesDir` (default: the JSON's folder). `patient_id` on images is kept; without it the file stem (or
 * `patientPattern`) is used.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { readCocoFile } from '../coco-validate.js';
import { patientFromName } from '../files.js';
import type { SourceDataset, SourceItem } from '../source.js';

export interface CocoParseOptions {
  imagesDir?: string;
  patientPattern?: RegExp;
}

export async function parseCocoSource(file: string, options: CocoParseOptions = {}): Promise<SourceDataset> {
  const { dataset, issues } = await readCocoFile(file);
  const imagesDir = options.imagesDir ?? dirname(file);
  const categories = [...dataset.categories].sort((a, b) => a.id - b.id);
  const nameById = new Map(categories.map((c) => [c.id, c.name]));
  const items = new Map<number, SourceItem>();
  for (const image of dataset.images) {
    const path = isAbsolute(image.file_name) ? image.file_name : join(imagesDir, image.file_name);
    items.set(image.id, {
      path,
      patientId:
        typeof image.patient_id === 'string' ? image.patient_id : patientFromName(path, options.patientPattern),
      boxes: [],
      declaredSize: { width: image.width, height: image.height },
      labelSource: `${file} images id ${image.id}`,
    });
  }
  for (const annotation of dataset.annotations) {
    items.get(annotation.image_id)?.boxes.push({
      category: nameById.get(annotation.category_id) as string,
      bbox: [...annotation.bbox],
    });
  }
  return { format: 'coco', root: file, categories: categories.map((c) => c.name), items: [...items.values()], issues };
}
