import { FedcxrError } from '@fedcxr/base';
import { describe, expect, it } from 'vitest';
import { evaluateCoco } from './coco-eval.js';
import { detectionsToCocoResults } from './results.js';

describe('detectionsToCocoResults', () => {
  it('converts x1y1x2y2 boxes and labels to COCO results that evaluate to AP 1 against the same boxes', () => {
    const results = detectionsToCocoResults(
      [10, 20],
      [[{ box: [5, 6, 25, 46], label: 2, score: 0.8 }], []],
      [0, 101, 102],
    );
    expect(results).toEqual([{ image_id: 10, category_id: 102, bbox: [5, 6, 20, 40], score: 0.8 }]);
    const gt = {
      images: [10, 20].map((id) => ({ id, file_name: `${id}.png`, width: 64, height: 64 })),
      categories: [
        { id: 101, name: 'a' },
        { id: 102, name: 'b' },
      ],
      annotations: [
        {
          id: 1,
          image_id: 10,
          category_id: 102,
          bbox: [5, 6, 20, 40] as [number, number, number, number],
          area: 800,
          iscrowd: 0 as const,
        },
      ],
    };
    expect(evaluateCoco(gt, results).perCategory[1].AP).toBeCloseTo(1, 12);
  });

  it('rejects a label without a category and mismatched lengths', () => {
    expect(() => detectionsToCocoResults([1], [[{ box: [0, 0, 1, 1], label: 5, score: 1 }]], [0, 1])).toThrow(
      FedcxrError,
    );
    expect(() => detectionsToCocoResults([1, 2], [[]])).toThrow(/2 image ids for 1 detection lists/);
  });
});
