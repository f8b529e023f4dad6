/** COCO detection format, as pycocotools reads it. Boxes are [x, y, width, height] in image pixels. */
export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
  /** fedcxr extensions: who the image belongs to (for patient-level splits) and where it came from. */
  patient_id?: string;
  source_path?: string;
  original_width?: number;
  original_height?: number;
  [extra: string]: unknown;
}

export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0 | 1;
  [extra: string]: unknown;
}

export interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
}

export interface CocoDataset {
  info?: Record<string, unknown>;
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
}

/** One detection in COCO results format (what `loadRes` takes). */
export interface CocoResult {
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}
