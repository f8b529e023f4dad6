/**
 * A synthetic chest X-ray export in exactly the layout of the seed study's hospital export (PRODUCT.md),
 * for tests and `cxr demo`, since the real one is private:
 *
 *   train/<class>/image/<patient>_<n>.dcm   MONOCHROME1, 12 bits stored, WindowCenter/Width, LOG
 *   train/<class>/mark/<patient>_<n>.png    binary lesion mask (white on black), one per DICOM;
 *                                           some saved as .jpg (lossy, as in the real export)
 *   train.csv                               file,category,box — one row per box ("[x, y, w, h]" in
 *                                           DICOM pixels), one row with an empty box per normal image
 *   test/image/<patient>_<n>.dcm            unlabelled
 *
 * `normal` images have no mask. The anatomy (body, lungs, heart, aortic knob, spine with vertebrae, ribs)
 * and each finding's look are cartoons, but placed where a radiologist would look, so a detector can learn
 * them. Everything follows from the seed: same options, same bytes.
 *
 * Two options make a phantom a detector learns in CPU minutes (`cxr demo`): `classes` draws only some of the
 * seed's findings (the export then holds only their folders), and `findings: 'conspicuous'` draws each
 * finding large, bright and in its own place, so the classes differ at 64–128 px: an enlarged bright heart
 * low in the middle, a dense round opacity inside a lung, a strongly curved spine, a big aortic knob high on
 * the left, … The default (`'subtle'`) keeps the cartoon's faint findings, byte for byte as before.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  encodeGreyJpeg,
  encodeGreyPng,
  FedcxrError,
  type GreyRaster,
  maskToBoxes,
  Rng,
  SEED_FINDING_CLASSES,
  SEED_NORMAL_CLASS,
  writeFileAtomic,
} from '@fedcxr/base';
import { encodeDicom, uidFromText } from './write.js';

export interface PhantomOptions {
  /** Export root to create (the folder that will hold train/, test/ and train.csv). */
  out: string;
  /** Default 1. */
  seed?: number;
  /** Image side in pixels (square); default 256, at least 64. */
  size?: number;
  /** Patients with labelled images; default 24. Each gets 1..maxImagesPerPatient images. */
  patients?: number;
  /** Default 3. */
  maxImagesPerPatient?: number;
  /** Unlabelled images under test/image (their own patients); default 6. */
  testImages?: number;
  /** Fraction of masks written as JPEG instead of PNG; default 0.25. */
  jpegMaskFraction?: number;
  /** Rows of train.csv whose box is deliberately moved away from the mask's box, to exercise the check; default 0. */
  csvDisagreements?: number;
  /**
   * The classes drawn: names from SEED_FINDING_CLASSES, plus `normal` for images without a finding; default
   * all seven findings and normal (the seed's classes). The export holds only these classes' folders.
   */
  classes?: readonly string[];
  /**
   * How findings look: `subtle` (default) faint cartoons; `conspicuous` large, high-contrast, class-specific
   * findings in class-specific places, learnable at 64–128 px by a detector trained from random weights.
   */
  findings?: PhantomFindingStyle;
}

export type PhantomFindingStyle = 'subtle' | 'conspicuous';

/** The seed's classes a phantom draws, in the order of SEED_FINDING_CLASSES, then normal. */
export const PHANTOM_CLASSES: readonly string[] = [...SEED_FINDING_CLASSES, SEED_NORMAL_CLASS];

export interface PhantomImage {
  /** Path relative to the export root. */
  file: string;
  /** Mask path relative to the root (absent for normal and test images). */
  mask?: string;
  category: string;
  patientId: string;
  /** Boxes from the mask, [x, y, w, h] in DICOM pixels. */
  boxes: [number, number, number, number][];
}

export interface PhantomSummary {
  root: string;
  size: number;
  train: PhantomImage[];
  test: PhantomImage[];
  patients: number;
  /** train.csv rows whose box was moved on purpose (file and the box written). */
  disagreements: { file: string; box: [number, number, number, number] }[];
}

export const PHANTOM_BITS_STORED = 12;

/** Writes the export; returns what it wrote (the ground truth, for tests). */
export async function generateChestPhantom(options: PhantomOptions): Promise<PhantomSummary> {
  const seed = options.seed ?? 1;
  const size = options.size ?? 256;
  const patientCount = options.patients ?? 24;
  const maxImages = options.maxImagesPerPatient ?? 3;
  const testCount = options.testImages ?? 6;
  const jpegFraction = options.jpegMaskFraction ?? 0.25;
  const disagreementCount = options.csvDisagreements ?? 0;
  if (!Number.isInteger(size) || size < 64 || size > 4096) {
    throw new FedcxrError('usage', `phantom size must be an integer from 64 to 4096, got ${size}`);
  }
  if (!Number.isInteger(patientCount) || patientCount < 1) {
    throw new FedcxrError('usage', `phantom patients must be a positive integer, got ${patientCount}`);
  }
  const style = options.findings ?? 'subtle';
  if (style !== 'subtle' && style !== 'conspicuous') {
    throw new FedcxrError('usage', `phantom findings must be "subtle" or "conspicuous", got "${style}"`);
  }
  const classes = phantomClasses(options.classes);
  const clear = style === 'conspicuous';
  const rng = new Random(seed);
  const root = options.out;
  for (const name of classes) {
    await mkdir(join(root, 'train', name, 'image'), { recursive: true });
    if (name !== SEED_NORMAL_CLASS) await mkdir(join(root, 'train', name, 'mark'), { recursive: true });
  }
  await mkdir(join(root, 'test', 'image'), { recursive: true });

  const train: PhantomImage[] = [];
  for (let p = 0; p < patientCount; p++) {
    const patientId = `PH${String(seed).padStart(3, '0')}-${String(p + 1).padStart(4, '0')}`;
    const anatomy = randomAnatomy(rng);
    const images = 1 + rng.int(maxImages);
    for (let n = 0; n < images; n++) {
      // The first image of each patient cycles through the classes so every class is present.
      const category = n === 0 ? classes[p % classes.length] : classes[rng.int(classes.length)];
      const name = `${patientId}_${n + 1}`;
      let rendered = renderChest(size, anatomy, category, rng, clear);
      // A finding too small to survive the mask's minimum area at tiny sizes: draw again.
      for (
        let tries = 0;
        tries < 8 && category !== SEED_NORMAL_CLASS && boxesOf(rendered, size).length === 0;
        tries++
      ) {
        rendered = renderChest(size, anatomy, category, rng, clear);
      }
      const file = `train/${category}/image/${name}.dcm`;
      await writeFileAtomic(join(root, file), dicomFor(rendered.pixels, size, patientId, n + 1, rng));
      const image: PhantomImage = { file, category, patientId, boxes: [] };
      if (category !== SEED_NORMAL_CLASS) {
        const maskImage = maskRaster(rendered, size);
        image.boxes = boxesOf(rendered, size);
        const jpeg = rng.next() < jpegFraction;
        image.mask = `train/${category}/mark/${name}.${jpeg ? 'jpg' : 'png'}`;
        await writeFileAtomic(join(root, image.mask), jpeg ? encodeGreyJpeg(maskImage, 90) : encodeGreyPng(maskImage));
      }
      train.push(image);
    }
  }

  const test: PhantomImage[] = [];
  for (let t = 0; t < testCount; t++) {
    const patientId = `PT${String(seed).padStart(3, '0')}-${String(t + 1).padStart(4, '0')}`;
    // Conspicuous exports (the demo) cycle through the classes, so a few test images show each of them.
    const category = clear ? classes[t % classes.length] : classes[rng.int(classes.length)];
    const rendered = renderChest(size, randomAnatomy(rng), category, rng, clear);
    const file = `test/image/${patientId}_1.dcm`;
    await writeFileAtomic(join(root, file), dicomFor(rendered.pixels, size, patientId, 1, rng));
    test.push({ file, category, patientId, boxes: [] });
  }

  const disagreements: PhantomSummary['disagreements'] = [];
  const rows = ['file,category,box'];
  const withBoxes = train.filter((image) => image.boxes.length > 0);
  const moved = new Set<string>();
  for (let i = 0; i < Math.min(disagreementCount, withBoxes.length); i++) {
    moved.add(withBoxes[Math.floor((i * withBoxes.length) / Math.max(1, disagreementCount))].file);
  }
  for (const image of train) {
    const fileName = image.file.split('/').pop() as string;
    if (image.boxes.length === 0) rows.push(`${fileName},${image.category},`);
    image.boxes.forEach((box, k) => {
      let written = box;
      if (k === 0 && moved.has(image.file)) {
        // Shift by more than the box's own size: no overlap with the mask's box at all.
        written = [Math.max(0, box[0] + box[2] + 2), box[1], box[2], box[3]];
        if (written[0] + written[2] > size) written = [Math.max(0, box[0] - box[2] - 2), box[1], box[2], box[3]];
        disagreements.push({ file: image.file, box: written });
      }
      rows.push(`${fileName},${image.category},"[${written.join(', ')}]"`);
    });
  }
  await writeFileAtomic(join(root, 'train.csv'), `${rows.join('\n')}\n`);
  return { root, size, train, test, patients: patientCount, disagreements };
}

/** The classes option checked: known names, no repeats, at least one; the seed's order kept. */
function phantomClasses(requested: readonly string[] | undefined): string[] {
  if (requested === undefined) return [...PHANTOM_CLASSES];
  const unknown = requested.filter((name) => !PHANTOM_CLASSES.includes(name));
  if (unknown.length > 0) {
    throw new FedcxrError(
      'usage',
      `phantom classes must be among ${PHANTOM_CLASSES.join(', ')}; unknown: ${unknown.join(', ')}`,
    );
  }
  if (new Set(requested).size !== requested.length) {
    throw new FedcxrError('usage', `phantom classes repeat a name: ${requested.join(', ')}`);
  }
  if (requested.length === 0) throw new FedcxrError('usage', 'phantom classes: name at least one class');
  return PHANTOM_CLASSES.filter((name) => requested.includes(name));
}

function maskRaster(rendered: Rendered, size: number): GreyRaster {
  return { width: size, height: size, channels: 1, bitDepth: 8, data: rendered.mask };
}

function boxesOf(rendered: Rendered, size: number): [number, number, number, number][] {
  return maskToBoxes(maskRaster(rendered, size)).map((c) => c.bbox);
}

function dicomFor(pixels: Uint16Array, size: number, patientId: string, instance: number, rng: Random): Uint8Array {
  const studyUid = uidFromText(`phantom-study:${patientId}:${instance}`);
  return encodeDicom({
    width: size,
    height: size,
    pixels,
    bitsStored: PHANTOM_BITS_STORED,
    photometric: 'MONOCHROME1',
    pixelIntensityRelationship: 'LOG',
    // A window that covers (nearly) the whole 12-bit range, varying per image as real exports do.
    windowCenter: 2048 + rng.int(81) - 40,
    windowWidth: 3900 + rng.int(197),
    patientId,
    patientName: `PHANTOM^${patientId}`,
    studyInstanceUid: studyUid,
    seriesInstanceUid: uidFromText(`phantom-series:${studyUid}`),
    sopInstanceUid: uidFromText(`phantom-sop:${studyUid}`),
    instanceNumber: instance,
    studyDate: `2025${String(1 + (instance % 12)).padStart(2, '0')}15`,
  });
}

/** A patient's build; each image of the patient jitters it slightly. */
interface Anatomy {
  bodyHalfWidth: number;
  lungHalfWidth: number;
  lungHalfHeight: number;
  lungCenterY: number;
  heartHalfWidth: number;
  ribSpacing: number;
}

function randomAnatomy(rng: Random): Anatomy {
  return {
    bodyHalfWidth: 0.43 + 0.04 * rng.next(),
    lungHalfWidth: 0.14 + 0.025 * rng.next(),
    lungHalfHeight: 0.28 + 0.04 * rng.next(),
    lungCenterY: 0.46 + 0.03 * rng.next(),
    heartHalfWidth: 0.12 + 0.02 * rng.next(),
    ribSpacing: 0.062 + 0.008 * rng.next(),
  };
}

interface Rendered {
  /** 12-bit stored values (MONOCHROME1, LOG). */
  pixels: Uint16Array;
  /** 255 where the finding is, else 0. */
  mask: Uint8Array;
}

/**
 * Renders in "brightness" b ∈ [0, 1] (1 = white on display: bone), then maps to stored values so that the
 * seed's normalization (clip to the window, z = -ln((1 + x) / 2^B), c = z / 2.5) gives back about b:
 * x = 2^B · exp(-(0.05 + 2.3 b)) - 1. High stored values are dark, as MONOCHROME1 requires.
 */
function renderChest(size: number, anatomy: Anatomy, category: string, rng: Random, clear = false): Rendered {
  const n = size * size;
  const b = new Float32Array(n);
  const mask = new Uint8Array(n);
  const jitter = () => (rng.next() - 0.5) * 0.02;
  const cx = 0.5 + jitter();
  const lungY = anatomy.lungCenterY + jitter();
  const lungs = [
    { x: cx - 0.17 - jitter(), y: lungY, rx: anatomy.lungHalfWidth, ry: anatomy.lungHalfHeight },
    { x: cx + 0.17 + jitter(), y: lungY, rx: anatomy.lungHalfWidth * 0.95, ry: anatomy.lungHalfHeight * 0.97 },
  ];
  const enlargedHeart = category === 'cardiac_hypertrophy';
  // Conspicuous: the enlarged heart is much wider and brighter than any normal one (cardiothoracic ratio ≫ 0.5).
  const heart = {
    x: cx + 0.05,
    y: lungY + anatomy.lungHalfHeight * 0.55,
    rx: enlargedHeart ? anatomy.heartHalfWidth * (clear ? 2 : 1.6) : anatomy.heartHalfWidth,
    ry: enlargedHeart ? (clear ? 0.17 : 0.15) : 0.11,
  };
  const heartBrightness = enlargedHeart && clear ? 0.72 : 0.52;
  const tortuous = category === 'aortic_curvature';
  const calcified = category === 'aortic_atherosclerosis_calcification';
  const knob = {
    x: cx + (tortuous ? (clear ? 0.11 : 0.09) : 0.06),
    y: lungY - anatomy.lungHalfHeight * 0.45,
    r: tortuous ? (clear ? 0.075 : 0.05) : calcified && clear ? 0.05 : 0.033,
  };
  const knobBrightness = tortuous && clear ? 0.75 : 0.55;
  const scoliosis = category === 'scoliosis';
  const curve = scoliosis ? ((clear ? 0.09 : 0.05) + 0.03 * rng.next()) * (rng.next() < 0.5 ? -1 : 1) : 0;
  const spineX = (y: number) => cx + curve * Math.sin((Math.PI * (y - 0.2)) / 0.6) * (y > 0.2 && y < 0.8 ? 1 : 0);
  const spineHalf = scoliosis && clear ? 0.04 : 0.032;

  // Finding-specific shapes, in normalized coordinates.
  const blobs: { x: number; y: number; s: number }[] = [];
  if (category === 'lung_field_infiltration') {
    // Conspicuous: one large dense opacity per image, in the middle of a lung field (never under the heart).
    const count = clear ? 1 : 1 + rng.int(2);
    for (let i = 0; i < count; i++) {
      const lung = lungs[(i + rng.int(2)) % 2];
      blobs.push(
        clear
          ? {
              x: lung.x + (rng.next() - 0.5) * lung.rx * 0.5,
              y: lung.y + (rng.next() - 0.6) * lung.ry * 0.5,
              s: 0.065 + 0.015 * rng.next(),
            }
          : {
              x: lung.x + (rng.next() - 0.5) * lung.rx * 0.8,
              y: lung.y + (rng.next() - 0.2) * lung.ry * 0.7,
              s: 0.035 + 0.02 * rng.next(),
            },
      );
    }
  }
  const blobGain = clear ? 0.5 : 0.3;
  const spurShape = clear ? { rx: 0.03, ry: 0.022, v: 1 } : { rx: 0.014, ry: 0.01, v: 0.92 };
  const spurs: { x: number; y: number }[] = [];
  if (category === 'degenerative_joint_disease_of_the_thoracic_spine') {
    const count = 1 + rng.int(2);
    for (let i = 0; i < count; i++) {
      const y = 0.3 + 0.45 * (i / count) + 0.15 * rng.next() * (1 / count);
      spurs.push({ x: spineX(y) + (rng.next() < 0.5 ? -1 : 1) * (spineHalf + (clear ? 0.02 : 0.008)), y });
    }
  }
  const thickeningSides =
    category === 'intercostal_pleural_thickening' ? (rng.next() < 0.4 ? [0, 1] : [rng.int(2)]) : ([] as number[]);

  for (let row = 0; row < size; row++) {
    const y = (row + 0.5) / size;
    for (let col = 0; col < size; col++) {
      const x = (col + 0.5) / size;
      const i = row * size + col;
      let v = 0.03; // air around the body
      let lesion = false;
      const inBody = ((x - cx) / anatomy.bodyHalfWidth) ** 2 + ((y - 0.58) / 0.62) ** 2 <= 1;
      if (inBody) v = 0.45;
      // Lungs (dark), with ribs (brighter arcs) across them.
      let lungIndex = -1;
      let lungRho = 2;
      for (let k = 0; k < 2; k++) {
        const l = lungs[k];
        const rho = Math.hypot((x - l.x) / l.rx, (y - l.y) / l.ry);
        if (rho <= 1) {
          lungIndex = k;
          lungRho = rho;
        }
      }
      if (lungIndex >= 0) {
        v = 0.13 + 0.05 * (1 - lungRho);
        const phase = (y - 0.1 - 0.35 * (x - cx) ** 2) / anatomy.ribSpacing;
        const ribDistance = Math.abs(phase - Math.round(phase));
        if (ribDistance < 0.17) v += 0.14;
        const side = lungIndex === 0 ? -1 : 1;
        if (
          thickeningSides.includes(lungIndex) &&
          lungRho > (clear ? 0.72 : 0.86) &&
          (x - lungs[lungIndex].x) * side > 0
        ) {
          if (
            y > lungs[lungIndex].y - lungs[lungIndex].ry * 0.6 &&
            y < lungs[lungIndex].y + lungs[lungIndex].ry * 0.4
          ) {
            v = clear ? 0.7 : 0.42;
            lesion = true;
          }
        }
      }
      // Heart and aortic knob (soft tissue over the lungs' medial parts).
      const heartRho = Math.hypot((x - heart.x) / heart.rx, (y - heart.y) / heart.ry);
      if (heartRho <= 1) {
        v = Math.max(v, heartBrightness);
        if (enlargedHeart) lesion = true;
      }
      const knobDistance = Math.hypot(x - knob.x, y - knob.y) / knob.r;
      if (knobDistance <= 1) {
        v = Math.max(v, knobBrightness);
        if (tortuous) lesion = true;
      }
      if (tortuous) {
        // The descending aorta bulging sideways below the knob.
        const t = (y - knob.y) / 0.25;
        if (t > 0 && t < 1) {
          const ax = knob.x + (clear ? 0.07 : 0.04) * Math.sin(Math.PI * t);
          if (Math.abs(x - ax) < (clear ? 0.028 : 0.018)) {
            v = Math.max(v, clear ? 0.72 : 0.5);
            lesion = true;
          }
        }
      }
      if (calcified && knobDistance > (clear ? 0.35 : 0.6) && knobDistance <= (clear ? 1.15 : 1)) {
        const angle = Math.atan2(y - knob.y, x - knob.x);
        if (angle < -0.3 && angle > -2.6) {
          v = 0.95;
          lesion = true;
        }
      }
      // Spine: vertebral bodies with darker discs between them.
      const sx = spineX(y);
      if (Math.abs(x - sx) < spineHalf && y > 0.05 && y < 0.97) {
        const disc = Math.abs(((y / 0.05) % 1) - 0.5) > 0.4;
        v = Math.max(v, scoliosis && clear ? (disc ? 0.75 : 0.9) : disc ? 0.6 : 0.74);
        if (scoliosis && y > 0.22 && y < 0.78) lesion = true;
      }
      for (const spur of spurs) {
        const d = Math.hypot((x - spur.x) / spurShape.rx, (y - spur.y) / spurShape.ry);
        if (d <= 1) v = spurShape.v;
        if (d <= 1.6) lesion = true;
      }
      for (const blob of blobs) {
        const g = Math.exp(-((x - blob.x) ** 2 + (y - blob.y) ** 2) / (2 * blob.s * blob.s));
        if (lungIndex >= 0 && g > 0.05) v += blobGain * g;
        if (lungIndex >= 0 && g > 0.5) lesion = true;
      }
      b[i] = v + rng.gaussian() * 0.012;
      if (lesion) mask[i] = 255;
    }
  }
  const full = 2 ** PHANTOM_BITS_STORED;
  const pixels = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const x = Math.round(full * Math.exp(-(0.05 + 2.3 * Math.min(1, Math.max(0, b[i]))))) - 1;
    pixels[i] = Math.min(full - 1, Math.max(0, x));
  }
  return { pixels, mask };
}

/** base's Rng (the same sequence on every platform), seeded as the phantoms always were, plus a paired Gaussian. */
class Random extends Rng {
  private spare: number | null = null;
  constructor(seed: number) {
    super((seed * 0x9e3779b9) >>> 0);
  }
  gaussian(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u = Math.max(this.next(), 1e-12);
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}
