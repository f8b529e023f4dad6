/** Datasets: formats in, COCO out, masks to boxes, patient-level splits, statistics and checks. */
export {
  boxIou,
  DEFAULT_MASK_MIN_AREA,
  DEFAULT_MASK_THRESHOLD,
  type MaskBoxOptions,
  type MaskComponent,
  maskToBoxes,
} from './mask.js';
export { SEED_FINDING_CLASSES, SEED_NORMAL_CLASS, type SeedFindingClass } from './seed-classes.js';
