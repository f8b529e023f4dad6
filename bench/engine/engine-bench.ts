/**
 * Engine benchmark: a 3×3 convolution, a 1024² matrix product and a ResNet-50 bottleneck block (forward, and
 * forward + backward for the input and every parameter) on each tfjs backend that starts here, beside PyTorch
 * (the reference venv's torch, 2 threads, same shapes) run in the same invocation, before and after the tfjs
 * runs. Times are the best of --reps repetitions (PyTorch: best of both of its runs). Prints GFLOP/s and the
 * ratio to PyTorch (time_torch / time_tfjs: 1 = as fast as PyTorch), by wall clock and by process CPU time
 * (all threads; the work itself, which other load on a shared machine barely changes).
 *
 *   npm run bench:engine -- [--backends wasm,cpu] [--batch 4] [--reps 5] [--threads 2] [--budget 180] [--json]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BackendName, initEngine, probeBackends } from '../../packages/core/src/engine/index.js';
import { type Tensor, type Tensor4D, tf } from '../../packages/core/src/tf.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Options {
  backends?: BackendName[];
  batch: number;
  reps: number;
  threads: number;
  json: boolean;
  /** Seconds per backend after which its remaining ops are skipped. */
  budget: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { batch: 4, reps: 5, threads: 2, json: false, budget: 180 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--json') options.json = true;
    else if (flag === '--backends') {
      options.backends = value.split(',') as BackendName[];
      i++;
    } else if (flag === '--batch' || flag === '--reps' || flag === '--threads' || flag === '--budget') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${value}`);
      options[flag.slice(2) as 'batch' | 'reps' | 'threads' | 'budget'] = n;
      i++;
    } else throw new Error(`unknown flag ${flag}`);
  }
  return options;
}

type OpName = 'conv3x3' | 'matmul1024' | 'bottleneck_forward' | 'bottleneck_train';
const opNames: OpName[] = ['conv3x3', 'matmul1024', 'bottleneck_forward', 'bottleneck_train'];

function flops(op: OpName, batch: number): number {
  const pixels = batch * 56 * 56;
  const bottleneckForward = 2 * pixels * (256 * 64 + 64 * 64 * 9 + 64 * 256);
  switch (op) {
    case 'conv3x3':
      return 2 * pixels * 64 * 64 * 9;
    case 'matmul1024':
      return 2 * 1024 ** 3;
    case 'bottleneck_forward':
      return bottleneckForward;
    case 'bottleneck_train':
      // forward + input gradient + weight gradient, each as many multiply-adds as the forward convolutions
      return 3 * bottleneckForward;
  }
}

interface TorchResult {
  torch: string;
  threads: number;
  /** Best wall-clock ms per op. */
  results: Record<OpName, number>;
  /** Best CPU ms per op (all threads). */
  cpu: Record<OpName, number>;
}

interface Timing {
  /** Best wall-clock ms. */
  ms: number;
  /** Best process CPU ms (all threads): the work itself, little changed by other load on the machine. */
  cpuMs: number;
}

function runTorch(options: Options): TorchResult | { error: string } {
  const script = path.join(repoRoot, 'bench/engine/torch_reference.py');
  let python = process.env.FEDCXR_PYTHON;
  if (!python) {
    const envScript = path.resolve(repoRoot, '../shared/tools/python-reference-env.sh');
    if (!existsSync(envScript)) return { error: `no reference venv (${envScript} missing; set FEDCXR_PYTHON)` };
    const venv = spawnSync('bash', [envScript], { encoding: 'utf8' });
    if (venv.status !== 0) return { error: `reference venv setup failed: ${venv.stderr.trim().split('\n').pop()}` };
    python = path.join(venv.stdout.trim().split('\n').pop() ?? '', 'bin/python');
  }
  const args = [script, '--batch', String(options.batch), '--reps', String(options.reps)];
  const run = spawnSync(python, [...args, '--threads', String(options.threads)], { encoding: 'utf8' });
  if (run.status !== 0) return { error: `PyTorch reference failed: ${run.stderr.trim().split('\n').pop()}` };
  return JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as TorchResult;
}

async function timed(body: () => Tensor | Tensor[], warmup: number, reps: number): Promise<Timing> {
  const once = async () => {
    const out = body();
    const outputs = Array.isArray(out) ? out : [out];
    await Promise.all(outputs.map((t) => t.data()));
    for (const t of outputs) t.dispose();
  };
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  const cpuSamples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    const startCpu = process.cpuUsage();
    await once();
    const cpu = process.cpuUsage(startCpu);
    cpuSamples.push((cpu.user + cpu.system) / 1000);
    samples.push(performance.now() - start);
  }
  // Best of the repetitions: the least disturbed by other work on a shared machine (same rule as the reference).
  return { ms: Math.min(...samples), cpuMs: Math.min(...cpuSamples) };
}

function random(shape: number[], scale = 1): Tensor {
  return tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 7), scale));
}

async function benchBackend(
  batch: number,
  reps: number,
  warmup: number,
  budgetMs: number,
): Promise<Partial<Record<OpName, Timing>>> {
  const started = performance.now();
  const x = random([batch, 56, 56, 64]) as Tensor4D;
  const w = random([3, 3, 64, 64]) as Tensor4D;
  const a = random([1024, 1024]);
  const xb = random([batch, 56, 56, 256]) as Tensor4D;
  const params: Record<string, Tensor> = {
    w1: random([1, 1, 256, 64], 0.05),
    w2: random([3, 3, 64, 64], 0.05),
    w3: random([1, 1, 64, 256], 0.05),
    g1: tf.ones([64]),
    b1: tf.zeros([64]),
    g2: tf.ones([64]),
    b2: tf.zeros([64]),
    g3: tf.ones([256]),
    b3: tf.zeros([256]),
  };
  const names = Object.keys(params);
  const batchNorm = (h: Tensor, gamma: Tensor, beta: Tensor) => {
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    return tf.batchNorm(h, mean, variance, beta, gamma, 1e-5);
  };
  const block = (input: Tensor, p: Record<string, Tensor>) => {
    let h = tf.relu(batchNorm(tf.conv2d(input as Tensor4D, p.w1 as Tensor4D, 1, 'valid'), p.g1, p.b1));
    h = tf.relu(batchNorm(tf.conv2d(h as Tensor4D, p.w2 as Tensor4D, 1, 'same'), p.g2, p.b2));
    h = batchNorm(tf.conv2d(h as Tensor4D, p.w3 as Tensor4D, 1, 'valid'), p.g3, p.b3);
    return tf.relu(tf.add(h, input));
  };
  const trainStep = () =>
    tf.tidy(() =>
      tf.grads((input: Tensor, ...values: Tensor[]) => {
        const p = Object.fromEntries(names.map((name, i) => [name, values[i]]));
        return tf.mean(tf.square(block(input, p)));
      })([xb, ...names.map((name) => params[name])]),
    );
  const bodies: Record<OpName, () => Tensor | Tensor[]> = {
    conv3x3: () => tf.conv2d(x, w, 1, 'same'),
    matmul1024: () => tf.matMul(a, a),
    bottleneck_forward: () => tf.tidy(() => block(xb, params)),
    bottleneck_train: trainStep,
  };
  const results: Partial<Record<OpName, Timing>> = {};
  for (const op of opNames) {
    // A slow backend on a busy machine could run for many minutes: ops past the budget are skipped (n/a).
    if (performance.now() - started > budgetMs) break;
    results[op] = await timed(bodies[op], warmup, reps);
  }
  tf.dispose([x, w, a, xb, ...Object.values(params)]);
  return results;
}

const options = parseArgs(process.argv.slice(2));
const log = (line: string) => {
  if (!options.json) process.stdout.write(`${line}\n`);
};
log(`engine bench: batch ${options.batch}, ${options.reps} reps (best of), ${options.threads} threads`);
const torch = runTorch(options);
if ('error' in torch) log(`PyTorch reference unavailable: ${torch.error}; no ratios`);
else log(`PyTorch ${torch.torch} on ${torch.threads} threads`);

const probe = await probeBackends({ threads: options.threads });
const results: Record<string, Partial<Record<OpName, Timing>>> = {};
const failures: Record<string, string> = {};
const wanted = options.backends ?? probe.backends.filter((b) => b.available).map((b) => b.name);
for (const name of wanted) {
  try {
    const info = await initEngine({ backend: name, threads: options.threads });
    // The plain cpu backend runs ~50× slower (pure JavaScript, no warm-up to amortize): a single run
    // keeps the bench short.
    const slow = name === 'cpu';
    results[name] = await benchBackend(options.batch, slow ? 1 : options.reps, slow ? 0 : 1, options.budget * 1000);
    log(`${name}: ${info.reason}`);
  } catch (error) {
    failures[name] = error instanceof Error ? error.message : String(error);
    log(`${name}: failed: ${failures[name]}`);
  }
}

// PyTorch again, after: the better of its two runs is compared (load on a shared machine varies).
const torchAfter = 'error' in torch ? torch : runTorch(options);
let reference: Record<OpName, Timing> | undefined;
if (!('error' in torch)) {
  const after = 'error' in torchAfter ? torch : torchAfter;
  reference = Object.fromEntries(
    opNames.map((op) => [
      op,
      { ms: Math.min(torch.results[op], after.results[op]), cpuMs: Math.min(torch.cpu[op], after.cpu[op]) },
    ]),
  ) as Record<OpName, Timing>;
  results.pytorch = reference;
}

interface Row extends Timing {
  gflops: number;
  /** time_PyTorch / time_backend, wall clock. */
  ratio?: number;
  /** The same with CPU time: work per core-second. */
  cpuRatio?: number;
}
const report: Record<string, Partial<Record<OpName, Row>>> = {};
for (const [name, times] of Object.entries(results)) {
  report[name] = Object.fromEntries(
    opNames.flatMap((op) => {
      const timing = times[op];
      if (!timing) return [];
      const { ms, cpuMs } = timing;
      const row: Row = { ms, cpuMs, gflops: flops(op, options.batch) / ms / 1e6 };
      if (reference) {
        row.ratio = reference[op].ms / ms;
        row.cpuRatio = reference[op].cpuMs / cpuMs;
      }
      return [[op, row]];
    }),
  ) as Partial<Record<OpName, Row>>;
}

if (options.json) {
  process.stdout.write(
    `${JSON.stringify({ batch: options.batch, threads: options.threads, probe, report, failures }, null, 2)}\n`,
  );
} else {
  log('');
  log(
    `${'backend'.padEnd(10)}${'op'.padEnd(20)}${'ms'.padStart(10)}${'GFLOP/s'.padStart(10)}${'× PyTorch'.padStart(11)}${'CPU ms'.padStart(10)}${'× (CPU)'.padStart(9)}`,
  );
  for (const [name, rows] of Object.entries(report)) {
    for (const op of opNames) {
      const row = rows[op];
      if (!row) {
        log(`${name.padEnd(10)}${op.padEnd(20)}  skipped: past the --budget of ${options.budget} s for this backend`);
        continue;
      }
      const ratio = row.ratio === undefined ? 'n/a' : row.ratio.toFixed(3);
      const cpuRatio = row.cpuRatio === undefined ? 'n/a' : row.cpuRatio.toFixed(3);
      log(
        `${name.padEnd(10)}${op.padEnd(20)}${row.ms.toFixed(1).padStart(10)}${row.gflops.toFixed(1).padStart(10)}${ratio.padStart(11)}${row.cpuMs.toFixed(1).padStart(10)}${cpuRatio.padStart(9)}`,
      );
    }
  }
}
// Backends may hold worker threads or GPU handles; the bench is done.
process.exit(0);
