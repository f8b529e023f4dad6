/** The seed study's classes (PRODUCT.md): seven findings, plus `normal` for images without boxes. */
export const SEED_FINDING_CLASSES = [
  'aortic_curvature',
  'aortic_atherosclerosis_calcification',
  'cardiac_hypertrophy',
  'intercostal_pleural_thickening',
  'lung_field_infiltration',
  'degenerative_joint_disease_of_the_thoracic_spine',
  'scoliosis',
] as const;

export type SeedFindingClass = (typeof SEED_FINDING_CLASSES)[number];

/** The folder of images with no finding; it has no masks and its images get no boxes. */
export const SEED_NORMAL_CLASS = 'normal';
