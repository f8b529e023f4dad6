/**
 * Aggregation time and peak memory for N simulated ResNet-50-FPN-sized updates (default 20 × 41M float32
 * parameters), through the coordinator's real path: chunks → UpdateIngest (decode, finite check, norm,
 * sha256, float32 spool) → FedAvgAccumulator.fold → new global model written in place. The reference, run
 * in the same invocation, is the naive approach: decode every update into memory, then average.
 * Each mode runs in its own child process so its peak RSS is its own.
 *
 *   node --experimental-transform-types --no-warnings \
 *     --import ./bench/register.mjs bench/federated/aggregation.bench.ts \
 *     [--sites 20] [--params 41000000] [--encoding float32|float16|int8] [--chunk 1048576]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FedAvgAccumulator, UpdateIngest } from '@fedcxr/coordinator';
import {
  bytesPerElement,
  type Encoding,
  StreamingUpdateDecoder,
  type UpdateBegin,
  type UpdateTensor,
} from '@fedcxr/federated';

interface Args {
  sites: number;
  params: number;
  encoding: Encoding;
  chunk: number;
  mode?: 'streaming' | 'naive';
}

function parseArgs(): Args {
  const get = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
  };
  return {
    sites: Number(get('sites', '20')),
    params: Number(get('params', '41000000')),
    encoding: get('encoding', 'float32') as Encoding,
    chunk: Number(get('chunk', String(1 << 20))),
    mode: process.argv.includes('--mode') ? (get('mode', 'streaming') as 'streaming') : undefined,
  };
}

/** ResNet-50-FPN-like tensor list: a few big conv weights and many small ones, summing to `params`. */
function tensorsFor(params: number, encoding: Encoding): UpdateTensor[] {
  const tensors: UpdateTensor[] = [];
  let left = params;
  let i = 0;
  while (left > 0) {
    const n = Math.min(left, i % 4 === 0 ? 2_359_296 : i % 4 === 1 ? 589_824 : i % 4 === 2 ? 256 : 1024);
    tensors.push({
      name: `layer${i}.weight`,
      shape: [n],
      encoding,
      ...(encoding === 'int8' ? { scale: 0.01 / 127 } : {}),
    });
    left -= n;
    i++;
  }
  return tensors;
}

/** The bytes one site would stream, produced chunk by chunk (the sender side is not what is measured). */
function* siteChunks(site: number, totalBytes: number, chunk: number, encoding: Encoding): Generator<Uint8Array> {
  let state = (0x9e3779b9 * (site + 1)) >>> 0;
  const size = bytesPerElement(encoding);
  for (let offset = 0; offset < totalBytes; offset += chunk) {
    const bytes = Math.min(chunk, totalBytes - offset);
    const out = new Uint8Array(bytes);
    const count = bytes / size;
    if (encoding === 'float32') {
      const values = new Float32Array(out.buffer);
      for (let k = 0; k < count; k++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        values[k] = ((state >>> 0) / 4294967296 - 0.5) * 1e-3;
      }
    } else if (encoding === 'float16') {
      const halves = new Uint16Array(out.buffer);
      for (let k = 0; k < count; k++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        halves[k] = 0x1000 + ((state >>> 0) % 0x0800); // small positive halves
      }
    } else {
      for (let k = 0; k < count; k++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        out[k] = (state >>> 0) & 0xff;
      }
    }
    yield out;
  }
}

function runMode(args: Args): Record<string, number> {
  const tensors = tensorsFor(args.params, args.encoding);
  const totalBytes = args.params * bytesPerElement(args.encoding);
  const baselineRss = process.memoryUsage().rss;
  const global = new Float32Array(args.params);
  let ingestMs = 0;
  let foldMs = 0;
  const start = performance.now();
  if (args.mode === 'streaming') {
    const dir = mkdtempSync(join(tmpdir(), 'fedcxr-aggbench-'));
    const accumulatorBytes = new Uint8Array(args.params * 4);
    const accumulator = new FedAvgAccumulator(new Float32Array(accumulatorBytes.buffer));
    try {
      for (let site = 0; site < args.sites; site++) {
        const begin = { tensors, byteLength: totalBytes, sha256: '' } as unknown as UpdateBegin;
        const spool = join(dir, `site-${site}.f32`);
        const t0 = performance.now();
        const ingest = new UpdateIngest(begin, spool, args.chunk);
        let index = 0;
        for (const chunk of siteChunks(site, totalBytes, args.chunk, args.encoding)) ingest.push(index++, chunk);
        // The bench's sender did not hash its bytes; accept the computed hash (the check itself is measured).
        (begin as { sha256: string }).sha256 = (
          ingest as unknown as { hash: { copy(): { digest(e: 'hex'): string } } }
        ).hash
          .copy()
          .digest('hex');
        const result = ingest.finish(1e9);
        const t1 = performance.now();
        accumulator.fold(spool, 100 + site);
        rmSync(spool);
        foldMs += performance.now() - t1;
        ingestMs += t1 - t0;
        if (!(result.norm > 0)) throw new Error('empty update');
      }
      const scale = 1 / accumulator.totalWeight;
      const sum = accumulator.sum;
      for (let i = 0; i < sum.length; i++) sum[i] = global[i] + sum[i] * scale;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else {
    // Naive: every decoded update held in memory, then one weighted average.
    const updates: Float32Array[] = [];
    for (let site = 0; site < args.sites; site++) {
      const t0 = performance.now();
      const values = new Float32Array(args.params);
      let sumSquares = 0;
      const decoder = new StreamingUpdateDecoder(tensors, (offset, run) => {
        for (let k = 0; k < run.length; k++) {
          if (!Number.isFinite(run[k])) throw new Error('not finite');
          sumSquares += run[k] * run[k];
        }
        values.set(run, offset);
      });
      for (const chunk of siteChunks(site, totalBytes, args.chunk, args.encoding)) decoder.push(chunk);
      if (!(sumSquares > 0)) throw new Error('empty update');
      updates.push(values);
      ingestMs += performance.now() - t0;
    }
    const t1 = performance.now();
    const out = new Float32Array(args.params);
    let total = 0;
    updates.forEach((u, site) => {
      const w = 100 + site;
      total += w;
      for (let i = 0; i < out.length; i++) out[i] += w * u[i];
    });
    for (let i = 0; i < out.length; i++) out[i] = global[i] + out[i] / total;
    foldMs = performance.now() - t1;
  }
  const totalMs = performance.now() - start;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  return {
    totalMs,
    ingestMs,
    foldMs,
    peakRssMB: peakRss / 2 ** 20,
    peakOverBaselineMB: (peakRss - baselineRss) / 2 ** 20,
  };
}

const args = parseArgs();
if (args.mode) {
  process.stdout.write(`${JSON.stringify(runMode(args))}\n`);
} else {
  const self = fileURLToPath(import.meta.url);
  const modelMB = (args.params * 4) / 2 ** 20;
  console.log(
    `aggregation bench: ${args.sites} updates × ${(args.params / 1e6).toFixed(1)}M params (${modelMB.toFixed(0)} MB float32 each), ` +
      `wire ${args.encoding}, ${(args.chunk / 2 ** 20).toFixed(2)} MiB chunks`,
  );
  const run = (mode: string) =>
    JSON.parse(
      execFileSync(process.execPath, [...process.execArgv, self, ...process.argv.slice(2), '--mode', mode], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      }),
    ) as Record<string, number>;
  const streaming = run('streaming');
  const naive = run('naive');
  const row = (name: string, r: Record<string, number>) =>
    `${name.padEnd(28)} total ${(r.totalMs / 1000).toFixed(2).padStart(7)} s  ingest ${(r.ingestMs / 1000).toFixed(2).padStart(7)} s  ` +
    `fold ${(r.foldMs / 1000).toFixed(2).padStart(6)} s  peak RSS ${r.peakRssMB.toFixed(0).padStart(6)} MB (+${r.peakOverBaselineMB.toFixed(0)} MB)`;
  console.log(row('streaming (coordinator)', streaming));
  console.log(row('naive in-memory reference', naive));
  console.log(
    `ratio streaming/naive: time ${(streaming.totalMs / naive.totalMs).toFixed(2)}×, peak RSS ${(streaming.peakRssMB / naive.peakRssMB).toFixed(3)}× ` +
      `(streaming peak ≈ ${(streaming.peakOverBaselineMB / modelMB).toFixed(2)} models over baseline; naive ≈ ${(naive.peakOverBaselineMB / modelMB).toFixed(2)})`,
  );
}
