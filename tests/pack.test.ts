/**
 * Installs the SDK the way users do: `npm pack` every workspace package, install the tarballs into a fresh
 * project outside the repo, and use each package's public API from there (ESM import, types shipped).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const workspaces = [
  'packages/base',
  'packages/core',
  'packages/dicom',
  'packages/models-frcnn',
  'packages/federated',
  'packages/cli',
  'apps/coordinator',
];
const npm = (args: string[], cwd: string) =>
  execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_onnxruntime_node_install: 'skip' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

describe('packed packages install and work outside the monorepo', () => {
  let project: string;

  beforeAll(() => {
    if (workspaces.some((w) => !existsSync(join(root, w, 'dist', 'index.js')))) {
      execFileSync('npx', ['nx', 'run-many', '-t', 'build', '--outputStyle=static'], { cwd: root, stdio: 'ignore' });
    }
    project = mkdtempSync(join(tmpdir(), 'fedcxr-pack-'));
    npm(['pack', '--silent', '--pack-destination', project, ...workspaces.flatMap((w) => ['-w', w])], root);
    const tarballs = readdirSync(project).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(workspaces.length);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'sdk-user', version: '1.0.0', private: true, type: 'module' }),
    );
    npm(['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs.map((t) => `./${t}`)], project);
  }, 600_000);

  afterAll(() => {
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it('ships only dist, README and package.json, with types', () => {
    for (const w of workspaces) {
      const manifest = JSON.parse(readFileSync(join(root, w, 'package.json'), 'utf8'));
      const installed = join(project, 'node_modules', ...manifest.name.split('/'));
      expect(existsSync(join(installed, 'dist', 'index.js')), manifest.name).toBe(true);
      expect(existsSync(join(installed, 'dist', 'index.d.ts')), manifest.name).toBe(true);
      expect(existsSync(join(installed, 'src')), `${manifest.name} must not ship src`).toBe(false);
    }
  });

  it('uses the public API of every package from a plain ESM script', () => {
    writeFileSync(
      join(project, 'use.mjs'),
      `
import * as base from '@fedcxr/base';
import * as core from '@fedcxr/core';
import * as dicom from '@fedcxr/dicom';
import * as frcnn from '@fedcxr/models-frcnn';
import * as federated from '@fedcxr/federated';
import * as coordinator from '@fedcxr/coordinator';
const reg = new core.Registry('thing');
reg.register('a', (o) => o.x * 2);
let configError = '';
try { core.parseConfig({ safeParse: () => ({ success: false, error: { issues: [{ path: ['engine', 'backend'], message: 'bad' }] } }) }, {}, 'x.yaml'); }
catch (e) { configError = e.message; }
console.log(JSON.stringify({
  built: reg.build('a', { x: 21 }),
  configError,
  versions: [base.VERSION, core.VERSION, dicom.VERSION, frcnn.VERSION, federated.VERSION, coordinator.VERSION],
  tf: typeof core.tf.tensor,
}));
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ['use.mjs'], { cwd: project, encoding: 'utf8' }));
    expect(out.built).toBe(42);
    expect(out.configError).toContain('engine.backend: bad');
    expect(out.versions).toEqual(['0.1.0', '0.1.0', '0.1.0', '0.1.0', '0.1.0', '0.1.0']);
    expect(out.tf).toBe('function');
  });

  it('serves the subpath entries: core/eval, core/data, core/train, the /testing helpers', () => {
    writeFileSync(
      join(project, 'subpaths.mjs'),
      `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
const evaluation = await import('@fedcxr/core/eval');
const data = await import('@fedcxr/core/data');
const lean = loaded.filter((url) => url.includes('/@tensorflow/'));
const core = await import('@fedcxr/core');
const train = await import('@fedcxr/core/train');
const base = await import('@fedcxr/base');
const testing = await import('@fedcxr/core/testing');
const frcnnTesting = await import('@fedcxr/models-frcnn/testing');
const frcnn = await import('@fedcxr/models-frcnn');
console.log(JSON.stringify({
  tfjsForEvalAndData: lean,
  same: [
    evaluation.evaluateCoco === core.evaluateCoco,
    data.parseDatasetSource === core.parseDatasetSource,
    data.maskToBoxes === base.maskToBoxes,
    train.trainDetector === core.trainDetector,
    train.Rng === base.Rng,
  ],
  testing: [typeof testing.withChromiumPage, typeof testing.hasChromium],
  reversed: Array.from(frcnnTesting.reversedPermutation(3)),
  notInMain: ['reversedPermutation' in frcnn, 'withChromiumPage' in core],
}));
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ['subpaths.mjs'], { cwd: project, encoding: 'utf8' }));
    expect(out.tfjsForEvalAndData).toEqual([]);
    expect(out.same).toEqual([true, true, true, true, true]);
    expect(out.testing).toEqual(['function', 'boolean']);
    expect(out.reversed).toEqual([2, 1, 0]);
    expect(out.notInMain).toEqual([false, false]);
  });

  it('installs @fedcxr/dicom without TensorFlow.js (it stands on @fedcxr/base, not @fedcxr/core)', () => {
    const alone = mkdtempSync(join(tmpdir(), 'fedcxr-pack-dicom-'));
    try {
      writeFileSync(
        join(alone, 'package.json'),
        JSON.stringify({ name: 'dicom-user', version: '1.0.0', private: true, type: 'module' }),
      );
      const tarballs = readdirSync(project).filter((f) => /^fedcxr-(base|dicom)-.*\.tgz$/.test(f));
      expect(tarballs).toHaveLength(2);
      npm(['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs.map((t) => join(project, t))], alone);
      expect(existsSync(join(alone, 'node_modules', '@fedcxr', 'dicom', 'dist', 'index.js'))).toBe(true);
      expect(existsSync(join(alone, 'node_modules', '@fedcxr', 'core')), '@fedcxr/core must not be installed').toBe(
        false,
      );
      expect(
        existsSync(join(alone, 'node_modules', '@tensorflow', 'tfjs')),
        '@tensorflow/tfjs must not be installed',
      ).toBe(false);
      expect(existsSync(join(alone, 'node_modules', '@tensorflow')), 'no @tensorflow package at all').toBe(false);
      writeFileSync(
        join(alone, 'use.mjs'),
        `
import * as base from '@fedcxr/base';
import * as dicom from '@fedcxr/dicom';
const bytes = dicom.encodeDicom({ width: 2, height: 2, bitsStored: 12, patientId: 'p1', pixels: Uint16Array.from([0, 1000, 2000, 4095]) });
const image = await dicom.readDicom(bytes);
let error;
try { await dicom.readDicom(new Uint8Array(8), { file: 'x.dcm' }); } catch (e) { error = e; }
console.log(JSON.stringify({
  versions: [base.VERSION, dicom.VERSION],
  stored: Array.from(image.frames[0].stored),
  fedcxrError: error instanceof base.FedcxrError,
}));
`,
      );
      const out = JSON.parse(execFileSync(process.execPath, ['use.mjs'], { cwd: alone, encoding: 'utf8' }));
      expect(out.versions).toEqual(['0.1.0', '0.1.0']);
      expect(out.stored).toEqual([0, 1000, 2000, 4095]);
      expect(out.fedcxrError).toBe(true);
    } finally {
      rmSync(alone, { recursive: true, force: true });
    }
  }, 600_000);

  it('links the cxr binary into node_modules/.bin', () => {
    const help = execFileSync(process.execPath, [join(project, 'node_modules', '.bin', 'cxr'), '--help'], {
      encoding: 'utf8',
    });
    expect(help).toContain('Usage: cxr');
  });
});
