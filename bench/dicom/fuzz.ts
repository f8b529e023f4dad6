/**
 * Mutation fuzzing of the DICOM reader: ≥ 10,000 mutated copies of real sample files (truncations, bit flips,
 * random bytes, bogus lengths, bogus tags, extreme geometry/bit-layout values), each read and — when it decodes —
 * normalized, in two worker threads watched for hangs and crashes.
 *
 *   npm run bench:dicom:fuzz -- [--count 10000] [--seed 1] [--hang-ms 10000] [--json]
 *
 * Outcomes per input: ok; a typed DicomError (by code); "unexpected" (anything else thrown, or a DicomError
 * wrapping a TypeError/RangeError/ReferenceError, i.e. a bug of ours); "crash" (the worker thread died);
 * "hang" (no answer within --hang-ms). The run passes with 0 unexpected, 0 crashes and 0 hangs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '../..');
const samplesDir = join(repoRoot, '../shared/data/dicom-samples');
const rsnaFile = join(repoRoot, '../shared/data/rsna-pneumonia/dicom/08542d41-e606-41df-b08c-9527b531f13f.dcm');

/** Every decodable sample except the 2-megapixel JPEG 2000 (too slow for 10,000 runs), plus one RSNA JPEG. */
const seedFiles = [
  'CR-MONO1-10-chest.dcm',
  'CT_small.dcm',
  'ExplVR_BigEnd.dcm',
  'JPEG-lossy.dcm',
  'JPEG2000.dcm',
  'JPEGLSNearLossless_08.dcm',
  'JPGExtended.dcm',
  'MR_small.dcm',
  'MR_small_RLE.dcm',
  'MR_small_bigendian.dcm',
  'MR_small_implicit.dcm',
  'MR_small_jp2klossless.dcm',
  'MR_small_jpeg_ls_lossless.dcm',
  'MR_small_padded.dcm',
  'SC_rgb_jpeg_dcmtk.dcm',
  'SC_rgb_rle.dcm',
  'SC_ybr_full_422_uncompressed.dcm',
  'badVR.dcm',
  'rtplan.dcm',
].map((name) => join(samplesDir, name));

interface Job {
  seed: number;
  count: number;
  shard: number;
  shards: number;
  /** First index this worker handles (after a restart). */
  from: number;
}
type Reply = { type: 'start'; index: number } | { type: 'done'; index: number; outcome: string };

async function workerMain(job: Job): Promise<void> {
  const { readDicom, DicomError, normalize, resizeKeepAspect } = await import(
    pathToFileURL(join(repoRoot, 'packages/dicom/src/index.ts')).href
  );
  const { mutate, mutationStream } = await import(
    pathToFileURL(join(repoRoot, 'packages/dicom/src/mutations.ts')).href
  );
  const files = [...seedFiles, ...(existsSync(rsnaFile) ? [rsnaFile] : [])].map((f) => new Uint8Array(readFileSync(f)));
  const stream = mutationStream(job.seed);
  for (let index = 0; index < job.count; index++) {
    const mutation = stream.next().value;
    if (index % job.shards !== job.shard || index < job.from) continue;
    parentPort?.postMessage({ type: 'start', index } satisfies Reply);
    const original = files[index % files.length];
    const bytes = mutate(original, mutation);
    let outcome: string;
    try {
      const image = await readDicom(bytes, { file: `input-${index}` });
      if (image.frames[0].samplesPerPixel === 1 && image.header.photometricInterpretation !== 'PALETTE COLOR') {
        resizeKeepAspect(normalize(image, index % 2 ? 'seed' : 'window'), 64);
      }
      outcome = 'ok';
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      const bug = cause instanceof TypeError || cause instanceof RangeError || cause instanceof ReferenceError;
      if (error instanceof DicomError && !bug) outcome = String((error as { code?: string }).code);
      else outcome = `unexpected: ${String(bug ? cause : error).slice(0, 200)}`;
    }
    parentPort?.postMessage({ type: 'done', index, outcome } satisfies Reply);
  }
}

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

async function main(): Promise<void> {
  if (!existsSync(samplesDir)) {
    console.error(`fuzz: ${samplesDir} not found; nothing to fuzz`);
    process.exit(2);
  }
  const count = option('count', 10_000);
  const seed = option('seed', 1);
  const hangMs = option('hang-ms', 10_000);
  const json = process.argv.includes('--json');
  const shards = 2;
  const outcomes = new Map<string, number>();
  const unexpected: Array<{ index: number; outcome: string }> = [];
  const crashes: number[] = [];
  const hangs: number[] = [];
  let finished = 0;
  const started = performance.now();
  const tally = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);

  const runShard = (shard: number, from: number): Promise<void> =>
    new Promise((resolve) => {
      const worker = new Worker(fileURLToPath(import.meta.url), {
        workerData: { seed, count, shard, shards, from } satisfies Job,
      });
      let current = -1;
      let lastSeen = performance.now();
      let settled = false;
      const settle = (next: number | null) => {
        if (settled) return;
        settled = true;
        clearInterval(watchdog);
        void worker.terminate();
        if (next === null) resolve();
        else runShard(shard, next).then(resolve);
      };
      const watchdog = setInterval(() => {
        if (current >= 0 && performance.now() - lastSeen > hangMs) {
          hangs.push(current);
          tally('hang');
          finished++;
          settle(current + 1);
        }
      }, 250);
      worker.on('message', (reply: Reply) => {
        lastSeen = performance.now();
        if (reply.type === 'start') {
          current = reply.index;
          return;
        }
        current = -1;
        finished++;
        if (reply.outcome.startsWith('unexpected')) {
          unexpected.push({ index: reply.index, outcome: reply.outcome });
          tally('unexpected');
        } else tally(reply.outcome);
        if (!json && finished % 1000 === 0) process.stderr.write(`fuzz: ${finished}/${count}\n`);
      });
      worker.on('error', () => {
        if (current >= 0) {
          crashes.push(current);
          tally('crash');
          finished++;
          settle(current + 1);
        }
      });
      worker.on('exit', (code) => {
        if (current >= 0 && !settled) {
          crashes.push(current);
          tally('crash');
          finished++;
          settle(current + 1);
        } else settle(null);
        void code;
      });
    });

  await Promise.all(Array.from({ length: shards }, (_, shard) => runShard(shard, 0)));
  const seconds = (performance.now() - started) / 1000;
  const report = {
    inputs: finished,
    seed,
    seconds: Math.round(seconds * 10) / 10,
    inputsPerSecond: Math.round(finished / seconds),
    crashes: crashes.length,
    hangs: hangs.length,
    unexpected: unexpected.length,
    outcomes: Object.fromEntries([...outcomes.entries()].sort((a, b) => b[1] - a[1])),
    examples: { crashes: crashes.slice(0, 5), hangs: hangs.slice(0, 5), unexpected: unexpected.slice(0, 5) },
  };
  if (json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(
      `fuzz: ${report.inputs} mutated inputs in ${report.seconds} s (${report.inputsPerSecond}/s), seed ${seed}`,
    );
    console.log(`  crashes ${report.crashes}, hangs ${report.hangs}, unexpected errors ${report.unexpected}`);
    console.log(`  outcomes ${JSON.stringify(report.outcomes)}`);
    if (unexpected.length > 0) console.log(`  unexpected: ${JSON.stringify(report.examples.unexpected)}`);
  }
  process.exitCode = crashes.length + hangs.length + unexpected.length > 0 ? 1 : 0;
}

if (isMainThread) await main();
else await workerMain(workerData as Job);
