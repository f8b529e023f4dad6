import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '@fedcxr/core';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportFasterRcnnToOnnx, FPN_LEVELS } from './export.js';

/**
 * The exported graphs load in Python's onnxruntime and give onnxruntime-node's outputs: every graph of the
 * ResNet-18-FPN export (features, RPN head, RoiAlign, box head) runs in both on the same inputs, and each
 * output is compared element by element. Needs the reference venv (REFERENCE_VENV or
 * /tmp/fedcxr-reference-venv) with onnxruntime; skips with a message without it.
 */
const root = new URL('../../../../', import.meta.url).pathname;
const cacheDir = join(root, '.cache/reference');
const fixture: { checkpoint: string; input_shape: number[]; input_f32_base64: string; rois: number[][] } = JSON.parse(
  readFileSync(join(root, 'tools/reference/fixtures/onnx/resnet18_fpn.json'), 'utf8'),
);
const TOLERANCE = 1e-5;

function referencePython(): { python: string } | { missing: string } {
  const venv = process.env.REFERENCE_VENV ?? '/tmp/fedcxr-reference-venv';
  const python = join(venv, 'bin', 'python');
  if (!existsSync(python)) return { missing: `no Python reference environment at ${venv} (set REFERENCE_VENV)` };
  try {
    execFileSync(python, ['-c', 'import onnxruntime, numpy'], { stdio: 'ignore' });
  } catch {
    return { missing: `the Python reference environment at ${venv} has no onnxruntime` };
  }
  return { python };
}

interface Run {
  name: string;
  model: string;
  inputs: Record<string, ort.Tensor>;
}

/** Writes the runs' models and inputs for tools/reference/predict_python_ort.py. */
function writeRuns(folder: string, runs: Run[], models: Record<string, Uint8Array>): void {
  for (const [file, bytes] of Object.entries(models)) writeFileSync(join(folder, file), bytes);
  const manifest = {
    runs: runs.map((run) => ({
      name: run.name,
      model: run.model,
      inputs: Object.fromEntries(
        Object.entries(run.inputs).map(([name, tensor]) => {
          const file = `${run.name}.${name}.in.bin`;
          const data = tensor.data as Float32Array | BigInt64Array;
          writeFileSync(join(folder, file), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
          return [name, { file, dtype: tensor.type, shape: tensor.dims }];
        }),
      ),
    })),
  };
  writeFileSync(join(folder, 'manifest.json'), JSON.stringify(manifest));
}

function readPythonOutput(folder: string, run: string, output: string): Float32Array {
  const bytes = readFileSync(join(folder, `${run}.${output}.py.bin`));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Largest |node − python| / max(1, |node|) over all elements. */
function largestDifference(node: Float32Array, python: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < node.length; i++) {
    const d = Math.abs(node[i] - python[i]) / Math.max(1, Math.abs(node[i]));
    if (!(d <= worst)) worst = d; // NaN propagates as a failure
  }
  return worst;
}

describe('exported ONNX graphs in Python onnxruntime', () => {
  const python = referencePython();
  let folder = '';
  const nodeOutputs = new Map<string, ort.InferenceSession.OnnxValueMapType>();
  let pythonShapes: Record<string, Record<string, number[]>> = {};
  let pythonVersion = '';

  beforeAll(async () => {
    if (!('python' in python)) return;
    const checkpoint = join(cacheDir, fixture.checkpoint);
    if (!existsSync(checkpoint)) {
      execFileSync(
        python.python,
        [join(root, 'tools/reference/onnx_make_fixtures.py'), cacheDir, '--checkpoint-only'],
        {
          stdio: 'ignore',
        },
      );
    }
    const { tensors } = await readSafetensors(checkpoint);
    const graphs = exportFasterRcnnToOnnx(tensors, { depth: 18 });
    folder = mkdtempSync(join(tmpdir(), 'onnx-python-'));
    const models = {
      'features.onnx': graphs.features,
      'rpn_head.onnx': graphs.rpnHead,
      'roi_align.onnx': graphs.roiAlign,
      'box_head.onnx': graphs.boxHead,
    };

    // Node runs first; each later graph takes the earlier graphs' Node outputs as its input.
    const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all' });
    const input = new Float32Array(new Uint8Array(Buffer.from(fixture.input_f32_base64, 'base64')).buffer);
    const runs: Run[] = [
      {
        name: 'features',
        model: 'features.onnx',
        inputs: { images: new ort.Tensor('float32', input, fixture.input_shape) },
      },
    ];
    nodeOutputs.set('features', await (await session(graphs.features)).run(runs[0].inputs));
    const features = nodeOutputs.get('features')!;
    runs.push({
      name: 'rpn_head',
      model: 'rpn_head.onnx',
      inputs: Object.fromEntries(FPN_LEVELS.map((level) => [`feature_${level}`, features[`feature_${level}`]])),
    });
    // The fixture's RoIs on the stride-4 level, plus one reaching past the map's border.
    const rois = Float32Array.from([...fixture.rois.flat().map((v) => v / 4), 20, 10, 30, 20]);
    const count = rois.length / 4;
    runs.push({
      name: 'roi_align',
      model: 'roi_align.onnx',
      inputs: {
        feature: features.feature_0,
        rois: new ort.Tensor('float32', rois, [count, 4]),
        batch_indices: new ort.Tensor('int64', new BigInt64Array(count), [count]),
      },
    });
    for (const run of runs.slice(1, 3)) {
      const bytes = models[run.model as keyof typeof models];
      nodeOutputs.set(run.name, await (await session(bytes)).run(run.inputs));
    }
    runs.push({ name: 'box_head', model: 'box_head.onnx', inputs: { pooled: nodeOutputs.get('roi_align')!.pooled } });
    nodeOutputs.set('box_head', await (await session(graphs.boxHead)).run(runs[3].inputs));

    writeRuns(folder, runs, models);
    execFileSync(python.python, [join(root, 'tools/reference/predict_python_ort.py'), folder], { stdio: 'pipe' });
    const result = JSON.parse(readFileSync(join(folder, 'python_outputs.json'), 'utf8'));
    pythonShapes = result.runs;
    pythonVersion = result.onnxruntime;
  }, 300_000);

  afterAll(() => {
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  it.for([
    ['features', 15],
    ['rpn_head', 10],
    ['roi_align', 1],
    ['box_head', 2],
  ] as const)(
    `%s graph: every output (%i) equals onnxruntime-node's within ${TOLERANCE}`,
    ([run, outputCount], ctx) => {
      if ('missing' in python) ctx.skip(python.missing);
      const node = nodeOutputs.get(run)!;
      expect(Object.keys(pythonShapes[run]).sort()).toEqual(Object.keys(node).sort());
      expect(Object.keys(node)).toHaveLength(outputCount);
      for (const [name, tensor] of Object.entries(node)) {
        expect(pythonShapes[run][name], `${run}.${name} shape (python onnxruntime ${pythonVersion})`).toEqual(
          tensor.dims,
        );
        const values = tensor.data as Float32Array;
        const difference = largestDifference(values, readPythonOutput(folder, run, name));
        expect(difference, `${run}.${name}`).toBeLessThanOrEqual(TOLERANCE);
        // A graph that output zeros everywhere would agree trivially.
        expect(
          values.some((v) => v !== 0),
          `${run}.${name} is not all zeros`,
        ).toBe(true);
      }
    },
  );
});
