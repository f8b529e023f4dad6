/**
 * Spool files: one accepted update's float32 values (its delta, in the model's flat order) on disk, read back
 * block by block so that aggregation holds one accumulator plus small blocks, whatever the number of sites.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { FedcxrError } from '@fedcxr/core';

const BLOCK_ELEMENTS = 1 << 20;

/** Reads a spool file (float32 values) in blocks. */
export function* readSpool(
  path: string,
  elements: number,
  blockElements = BLOCK_ELEMENTS,
): Generator<{ offset: number; values: Float32Array }> {
  const fd = openSync(path, 'r');
  try {
    const buffer = new Float32Array(Math.min(blockElements, Math.max(1, elements)));
    const bytes = new Uint8Array(buffer.buffer);
    for (let offset = 0; offset < elements; offset += buffer.length) {
      const count = Math.min(buffer.length, elements - offset);
      const read = readSync(fd, bytes, 0, count * 4, offset * 4);
      if (read !== count * 4) throw new FedcxrError('spool_truncated', `spool ${path} is truncated`, { file: path });
      yield { offset, values: buffer.subarray(0, count) };
    }
  } finally {
    closeSync(fd);
  }
}

export function spoolSha256(path: string, elements: number): string {
  const hash = createHash('sha256');
  for (const { values } of readSpool(path, elements))
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return hash.digest('hex');
}

/**
 * Reads `spools` in lockstep, block by block, and writes `reduce(column)` into `out` for every coordinate: the
 * column holds that coordinate's value from each spool (times its `scales` entry, when given). The column is
 * reused: `reduce` may sort it. Memory: `out` plus one block per spool.
 */
export function reduceColumns(
  spools: readonly string[],
  out: Float32Array,
  reduce: (column: Float64Array) => number,
  scales?: readonly number[],
  blockElements = 1 << 18,
): void {
  const n = spools.length;
  if (n === 0) throw new FedcxrError('no_updates', 'nothing to aggregate');
  const readers = spools.map((p) => readSpool(p, out.length, blockElements));
  const column = new Float64Array(n);
  try {
    for (;;) {
      const blocks = readers.map((r) => r.next());
      if (blocks[0].done) break;
      const { offset, values } = blocks[0].value;
      for (let i = 0; i < values.length; i++) {
        for (let k = 0; k < n; k++)
          column[k] = (blocks[k].value as { values: Float32Array }).values[i] * (scales ? scales[k] : 1);
        out[offset + i] = reduce(column);
      }
    }
  } finally {
    for (const reader of readers) reader.return(undefined);
  }
}
