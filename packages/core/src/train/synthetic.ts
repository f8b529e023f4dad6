/**
 * Synthetic detection images for tests and quick demos: dark noisy backgrounds with bright squares
 * (class 1) and dimmer discs (class 2); some images are empty negatives. Deterministic for a seed.
 */

import { Rng } from '@fedcxr/base';
import type { CocoDataset } from '../coco.js';
import type { DetectorImage } from '../model.js';

export interface SyntheticSet {
  coco: CocoDataset;
  images: DetectorImage[];
}

export function synthesizeShapes(options: {
  count: number;
  size?: number;
  negatives?: number;
  seed?: number;
}): SyntheticSet {
  const size = options.size ?? 64;
  const rng = new Rng(options.seed ?? 0);
  const coco: CocoDataset = {
    images: [],
    annotations: [],
    categories: [
      { id: 1, name: 'square' },
      { id: 2, name: 'disc' },
    ],
  };
  const images: DetectorImage[] = [];
  const total = options.count + (options.negatives ?? 0);
  for (let i = 0; i < total; i++) {
    const pixels = Float32Array.from({ length: size * size }, () => 0.1 + 0.05 * rng.next());
    const objects = i < options.count ? 1 + rng.int(2) : 0;
    const placed: [number, number, number, number][] = [];
    for (let k = 0; k < objects; k++) {
      const side = Math.round(size * rng.uniform(0.2, 0.35));
      let x = 0;
      let y = 0;
      for (let attempt = 0; attempt < 20; attempt++) {
        x = rng.int(size - side);
        y = rng.int(size - side);
        if (placed.every(([px, py, pw, ph]) => x + side <= px || px + pw <= x || y + side <= py || py + ph <= y)) break;
      }
      const category = 1 + rng.int(2);
      for (let yy = y; yy < y + side; yy++) {
        for (let xx = x; xx < x + side; xx++) {
          const inside =
            category === 1 || (xx + 0.5 - x - side / 2) ** 2 + (yy + 0.5 - y - side / 2) ** 2 <= (side / 2) ** 2;
          if (inside) pixels[yy * size + xx] = category === 1 ? 0.9 : 0.6;
        }
      }
      placed.push([x, y, side, side]);
      coco.annotations.push({
        id: coco.annotations.length + 1,
        image_id: i + 1,
        category_id: category,
        bbox: [x, y, side, side],
        area: side * side,
        iscrowd: 0,
      });
    }
    coco.images.push({
      id: i + 1,
      file_name: `synthetic_${i + 1}.png`,
      width: size,
      height: size,
      patient_id: `P${i + 1}`,
    });
    images.push({ pixels, width: size, height: size, channels: 1 });
  }
  return { coco, images };
}
