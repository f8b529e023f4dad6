/**
 * DICOM throughput: read + decode + `seed` and `window` normalize + resize to 512 (aspect kept) on the RSNA
 * pneumonia DICOMs (602 JPEG-baseline CRs), against pydicom + numpy + Pillow doing the same work in the same run
 * (bench/dicom/pydicom_reference.py, one thread each side). Prints images/s for both and the ratio.
 *
 *   npm run bench:dicom -- [--limit N] [--size 512] [--chunk 50] [--parallel 2] [--json]
 *
 * Also runs both sides with --parallel workers (our worker threads against as many Python processes).
 *
 * Python: $FEDCXR_PYTHON, else the reference venv from /work/shared/tools/python-reference-env.sh, else python3
 * (needs pydicom, numpy, pillow). The checksums (sum of output means) of both sides are printed as a cross-check.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { normalize, normalizeResized, preloadCodecs, readDicom } from '../../packages/dicom/src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(here, '../..');
const rsnaDir = join(repoRoot, '../shared/data/rsna-pneumonia/dicom');

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

function python(): string {
  if (process.env.FEDCXR_PYTHON) return process.env.FEDCXR_PYTHON;
  const script = join(repoRoot, '../shared/tools/python-reference-env.sh');
  if (existsSync(script)) {
    const venv = execFileSync('bash', [script], { encoding: 'utf8' }).trim().split('\n').at(-1) ?? '';
    if (existsSync(join(venv, 'bin/python'))) return join(venv, 'bin/python');
  }
  return 'python3';
}

/** The measured work: read, decode, both presets, resize; returns the sum of the output means as a checksum. */
async function work(files: string[], size: number): Promise<number> {
  let checksum = 0;
  for (const file of files) {
    const image = await readDicom(readFileSync(file), { file });
    for (const preset of ['seed', 'window'] as const) {
      const resized = normalizeResized(image, preset, size);
      const data = resized.data;
      let sum = 0;
      for (let i = 0; i < data.length; i++) sum += data[i];
      checksum += sum / data.length;
    }
  }
  return checksum;
}

/** Both sides with `parallel` workers: our worker threads against as many Python processes, each on a share. */
async function parallelRun(files: string[], size: number, parallel: number, py: string) {
  const shares = Array.from({ length: parallel }, (_, k) => files.filter((_, i) => i % parallel === k));
  let started = performance.now();
  await Promise.all(
    shares.map(
      (share) =>
        new Promise<number>((resolve, reject) => {
          const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { files: share, size } });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  const oursSeconds = (performance.now() - started) / 1000;
  const run = promisify(execFile);
  started = performance.now();
  await Promise.all(shares.map((share) => run(py, [join(here, 'pydicom_reference.py'), String(size), ...share])));
  const theirsSeconds = (performance.now() - started) / 1000;
  return {
    parallel,
    fedcxrImagesPerSecond: files.length / oursSeconds,
    pydicomImagesPerSecond: files.length / theirsSeconds,
    ratio: theirsSeconds / oursSeconds,
  };
}

async function main(): Promise<void> {
  if (!existsSync(rsnaDir)) {
    console.error(`bench:dicom: ${rsnaDir} not found`);
    process.exit(2);
  }
  const size = option('size', 512);
  const limit = option('limit', Number.POSITIVE_INFINITY);
  const json = process.argv.includes('--json');
  const files = readdirSync(rsnaDir)
    .filter((name) => name.endsWith('.dcm'))
    .sort()
    .slice(0, limit)
    .map((name) => join(rsnaDir, name));

  await preloadCodecs();
  // Warm up the JIT on a few files so both sides are measured in steady state (pydicom's imports are excluded too).
  for (const file of files.slice(0, 5)) normalize(await readDicom(file), 'seed');

  // The machine may be shared: alternate chunks of our run and the reference run so that both see the same load,
  // and report CPU seconds (this process / the Python process) beside wall-clock seconds.
  const chunk = option('chunk', 50);
  const py = python();
  const ours = { seconds: 0, cpuSeconds: 0, checksum: 0 };
  const theirs = { seconds: 0, cpuSeconds: 0, checksum: 0 };
  for (let start = 0; start < files.length; start += chunk) {
    const part = files.slice(start, start + chunk);
    const wall = performance.now();
    const cpu = process.cpuUsage();
    ours.checksum += await work(part, size);
    const used = process.cpuUsage(cpu);
    ours.seconds += (performance.now() - wall) / 1000;
    ours.cpuSeconds += (used.user + used.system) / 1e6;
    const reference = JSON.parse(
      execFileSync(py, [join(here, 'pydicom_reference.py'), String(size), ...part], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      }),
    ) as { images: number; seconds: number; cpuSeconds: number; checksum: number };
    theirs.seconds += reference.seconds;
    theirs.cpuSeconds += reference.cpuSeconds;
    theirs.checksum += reference.checksum;
  }

  const parallel = option('parallel', 2);
  const parallelReport = parallel > 1 ? await parallelRun(files, size, parallel, py) : null;

  const report = {
    images: files.length,
    size,
    fedcxr: {
      ...ours,
      imagesPerSecond: files.length / ours.seconds,
      imagesPerCpuSecond: files.length / ours.cpuSeconds,
    },
    pydicom: {
      ...theirs,
      imagesPerSecond: files.length / theirs.seconds,
      imagesPerCpuSecond: files.length / theirs.cpuSeconds,
    },
    ratio: theirs.seconds / ours.seconds,
    cpuRatio: theirs.cpuSeconds / ours.cpuSeconds,
    parallel: parallelReport,
  };
  if (json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(`bench:dicom: ${files.length} RSNA DICOMs, read + decode + seed & window + resize ${size}`);
    for (const [name, side] of [
      ['fedcxr ', report.fedcxr],
      ['pydicom', report.pydicom],
    ] as const) {
      console.log(
        `  ${name} ${side.imagesPerSecond.toFixed(1)} images/s wall (${side.seconds.toFixed(2)} s), ` +
          `${side.imagesPerCpuSecond.toFixed(1)} images/CPU-s (${side.cpuSeconds.toFixed(2)} s), checksum ${side.checksum.toFixed(4)}`,
      );
    }
    console.log(
      `  ratio ${report.ratio.toFixed(2)}x wall, ${report.cpuRatio.toFixed(2)}x CPU (pydicom / fedcxr), one thread each`,
    );
    if (parallelReport) {
      const p = parallelReport;
      console.log(
        `  ${p.parallel} workers: fedcxr ${p.fedcxrImagesPerSecond.toFixed(1)} images/s (threads), pydicom ${p.pydicomImagesPerSecond.toFixed(1)} images/s (processes), ratio ${p.ratio.toFixed(2)}x`,
      );
      console.log(
        `  fedcxr with ${p.parallel} worker threads vs single-process pydicom: ${(p.fedcxrImagesPerSecond / report.pydicom.imagesPerSecond).toFixed(2)}x`,
      );
    }
  }
}

if (isMainThread) await main();
else {
  const { files, size } = workerData as { files: string[]; size: number };
  await preloadCodecs();
  parentPort?.postMessage(await work(files, size));
}
