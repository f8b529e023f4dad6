/**
 * What a format parser hands to the import pipeline: the images it found, their boxes in the source
 * image's own pixels (or normalized, for YOLO), and every problem it saw, each with its location.
 */
export type DatasetFormat = 'seed' | 'rsna' | 'coco' | 'voc' | 'yolo' | 'vindr' | 'nih';

export interface SourceBox {
  category: string;
  /** [x, y, width, height]: source pixels, or fractions of the image size when the item says `normalized`. */
  bbox: [number, number, number, number];
  /** Facts carried into the COCO annotation (VinDr's `rad_id`, how many readers' boxes were fused). */
  attributes?: Record<string, string | number>;
}

export interface SourceItem {
  /** Absolute path of the image file (DICOM, PNG or JPEG). */
  path: string;
  /** Known from the labels (RSNA patientId, COCO patient_id, a pattern); DICOM files fill it from PatientID. */
  patientId?: string;
  boxes: SourceBox[];
  /** Boxes are fractions of the image size (YOLO); the pipeline scales them with the real size. */
  normalized?: boolean;
  /**
   * The image size the labels were drawn on, when the labels say so (VOC <size>, COCO width/height). When the
   * real image differs, the pipeline scales the boxes to the real image and warns.
   */
  declaredSize?: { width: number; height: number };
  /** Where the labels of this item came from, for messages (`train.csv:12`, `a.xml`). */
  labelSource?: string;
  /** Format-specific facts carried into the COCO image record (e.g. RSNA's detailed class). */
  extra?: Record<string, string | number>;
}

export type IssueSeverity = 'error' | 'warning';

export interface DatasetIssue {
  severity: IssueSeverity;
  /** Stable machine-readable kind, e.g. `missing_file`, `box_outside_image`, `mask_csv_mismatch`. */
  code: string;
  /** The file the problem is in. */
  file: string;
  /** 1-based line in that file, when it has lines. */
  line?: number;
  /** The record within the file (`annotations[3] (id 17)`, `object 2`), when it is structured. */
  item?: string;
  message: string;
}

export interface SourceDataset {
  format: DatasetFormat;
  /** The folder or file the dataset was read from. */
  root: string;
  /** Category names in id order (COCO ids are 1-based positions in this list). */
  categories: string[];
  items: SourceItem[];
  issues: DatasetIssue[];
  /** What the parser did that a person should know (how many boxes a fusion took in and gave out). */
  notes?: string[];
  /** The same, for the COCO `info` record. */
  info?: Record<string, string | number>;
}

/** `file:line: item: message` — how every issue prints. */
export function formatIssue(issue: DatasetIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return `${where}: ${issue.item ? `${issue.item}: ` : ''}${issue.message}`;
}

/** Builds an issue, leaving out the line when there is none. */
export function issueAt(
  severity: IssueSeverity,
  code: string,
  file: string,
  line: number | undefined,
  message: string,
  item?: string,
): DatasetIssue {
  const issue: DatasetIssue = { severity, code, file, message };
  if (line !== undefined) issue.line = line;
  if (item !== undefined) issue.item = item;
  return issue;
}

/** Issues found in bulk (a label file naming thousands of missing images): the first `listed`, then one count. */
export function cappedIssues<T>(
  found: readonly T[],
  each: (entry: T) => DatasetIssue,
  rest: (count: number) => DatasetIssue,
  listed = 20,
): DatasetIssue[] {
  const out = found.slice(0, listed).map(each);
  if (found.length > listed) out.push(rest(found.length - listed));
  return out;
}
