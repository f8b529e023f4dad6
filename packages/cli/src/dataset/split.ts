/** `dataset split` as a function: read a COCO file, split it by patient, write one COCO file per split. */
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import {
  type CocoDataset,
  type DatasetSplit,
  readCocoFile,
  type SplitCounts,
  type SplitOptions,
  splitByPatient,
  writeJsonAtomic,
} from '@fedcxr/core';

export interface SplitFileOptions extends SplitOptions {
  /** Where to write `<split>.json` (default: beside the input); file_names are rewritten to still point at the images. */
  out?: string;
}

export interface SplitFileResult {
  /** Written files, in split order (train, val[, test] or fold<k>-train, fold<k>-val, …[, test]). */
  files: string[];
  splits: SplitCounts[];
}

export async function splitAnnotationsFile(file: string, options: SplitFileOptions = {}): Promise<SplitFileResult> {
  const { dataset } = await readCocoFile(file);
  const splits: DatasetSplit[] = splitByPatient(dataset, options);
  const outDir = options.out ?? dirname(file);
  const files: string[] = [];
  for (const split of splits) {
    const target = join(outDir, `${split.name}.json`);
    await writeJsonAtomic(target, relocate(split.dataset, dirname(file), outDir));
    files.push(target);
  }
  return { files, splits: splits.map((s) => s.counts) };
}

/** Split files written elsewhere keep pointing at the same images. */
function relocate(dataset: CocoDataset, fromDir: string, toDir: string): CocoDataset {
  if (resolve(fromDir) === resolve(toDir)) return dataset;
  return {
    ...dataset,
    images: dataset.images.map((image) => ({
      ...image,
      file_name: isAbsolute(image.file_name)
        ? image.file_name
        : relative(toDir, join(fromDir, image.file_name)).split('\\').join('/'),
    })),
  };
}
