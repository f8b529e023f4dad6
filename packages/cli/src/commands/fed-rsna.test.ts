/**
 * Privacy on real data: sites train on RSNA chest radiographs (../shared/data/rsna-pneumonia, a 40-image
 * subset imported by `cxr dataset import`) — the small tabular model, and Faster R-CNN itself — and every
 * byte each site sends (all engine.io packets, text and binary) is captured. Proven: no PatientID (nor any image's file name) appears in the traffic, no run
 * of any image's pixels appears in it, every string sent is an id/hash/tensor name/metric name/enum, and
 * the bytes sent per round are bounded by the update size, far below the pixels the site holds.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Coordinator } from '@fedcxr/coordinator';
import { type CocoDataset, initEngine, openCocoDataset, readGreyRaster } from '@fedcxr/core';
import '@fedcxr/models-frcnn';
import {
  buildSiteDetector,
  createTabularModel,
  DetectorTrainer,
  type DetectorTrainerConfig,
  detectorTrainerOptions,
  federatedWeights,
  type LabelledRows,
  rowsFromCoco,
  SiteAgent,
  selectRows,
  shardByPatient,
  splitValidation,
  TabularTrainer,
} from '@fedcxr/federated';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../testing.js';

const rsna = fileURLToPath(new URL('../../../../../shared/data/rsna-pneumonia', import.meta.url));
const present = existsSync(join(rsna, 'stage_2_train_labels.csv'));
if (!present) console.warn(`skipping the federated RSNA privacy test: ${rsna} is absent`);

/** A 40-image view of the RSNA folder (symlinks + filtered CSVs): 20 with opacities, 20 without. */
function subset(dir: string): void {
  const labels = readFileSync(join(rsna, 'stage_2_train_labels.csv'), 'utf8').trim().split(/\r?\n/);
  const info = readFileSync(join(rsna, 'stage_2_detailed_class_info.csv'), 'utf8').trim().split(/\r?\n/);
  const positive = [
    ...new Set(
      labels
        .slice(1)
        .filter((l) => l.endsWith(',1'))
        .map((l) => l.split(',')[0]),
    ),
  ].slice(0, 20);
  const negative = [
    ...new Set(
      labels
        .slice(1)
        .filter((l) => l.endsWith(',0'))
        .map((l) => l.split(',')[0]),
    ),
  ].slice(0, 20);
  const keep = new Set([...positive, ...negative]);
  mkdirSync(join(dir, 'dicom'), { recursive: true });
  for (const id of keep) symlinkSync(join(rsna, 'dicom', `${id}.dcm`), join(dir, 'dicom', `${id}.dcm`));
  writeFileSync(
    join(dir, 'stage_2_train_labels.csv'),
    `${[labels[0], ...labels.slice(1).filter((l) => keep.has(l.split(',')[0]))].join('\n')}\n`,
  );
  writeFileSync(
    join(dir, 'stage_2_detailed_class_info.csv'),
    `${[info[0], ...info.slice(1).filter((l) => keep.has(l.split(',')[0]))].join('\n')}\n`,
  );
}

const ALLOWED_STRING =
  /^([0-9a-f]{32}|[0-9a-f]{64}|site-[12]|fc1\.(weight|bias)|loss|accuracy|float32|delta|idle|downloading|evaluating|training|uploading|update:(begin|chunk|end)|model:chunk|eval:report|site:status|site|site-[12]-token-0123456789)$/;

function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      strings(v, out);
    }
  }
  return out;
}

/** The protocol's own vocabulary (JSON keys and fixed values every site sends). */
const PROTOCOL_KEYS = new Set([
  '_placeholder',
  'num',
  'round',
  'nonce',
  'index',
  'data',
  'modelHash',
  'baseModelHash',
  'kind',
  'numExamples',
  'metrics',
  'globalEvaluation',
  'tensors',
  'name',
  'shape',
  'encoding',
  'byteLength',
  'sha256',
  'evaluation',
  'state',
  'protocol',
  'role',
  'siteId',
  'token',
]);

/**
 * The checks on what a site sent: (1) no PatientID or file name of any image, as text or bytes; (2) every
 * string in its JSON packets is protocol vocabulary or `allowed`; (3) no 16-byte run of any image's pixels
 * in its binary traffic. Returns the binary traffic and the checked strings for further checks.
 */
async function checkWire(
  text: string[],
  binary: Buffer[],
  coco: CocoDataset,
  imageDir: string,
  allowed: (value: string) => boolean,
): Promise<{ wireBinary: Buffer; checked: string[] }> {
  const wireText = text.join('\n');
  const wireBinary = Buffer.concat(binary);
  expect(text.length).toBeGreaterThan(10);
  expect(binary.length).toBeGreaterThanOrEqual(6); // at least one update chunk per site per round
  // 1. No identifier: every PatientID and file name of every image, as text and as bytes.
  for (const image of coco.images) {
    for (const id of [String(image.patient_id), image.file_name]) {
      expect(wireText.includes(id)).toBe(false);
      expect(wireBinary.includes(Buffer.from(id, 'utf8'))).toBe(false);
    }
  }
  // 2. Every string a site sent (keys and values of its JSON packets) is from the protocol's alphabet.
  const checked: string[] = [];
  for (const packet of text) {
    if (!/^\d/.test(packet)) continue; // engine.io ping/pong and the like
    const json = packet.replace(/^\d+(-)?(\/[^,]*,)?\d*/, '');
    if (!json) continue;
    for (const s of strings(JSON.parse(json))) {
      if (PROTOCOL_KEYS.has(s)) continue;
      expect(allowed(s), `a site sent the string ${JSON.stringify(s)}`).toBe(true);
      checked.push(s);
    }
  }
  // 3. No pixels: no 16-byte run of any image's grey pixels appears in the binary traffic.
  for (const image of coco.images.slice(0, 40)) {
    const raster = await readGreyRaster(join(imageDir, image.file_name));
    const pixels = Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength);
    for (let offset = pixels.length / 4; offset < pixels.length; offset += Math.floor(pixels.length / 9)) {
      const run = pixels.subarray(offset, offset + 16);
      if (new Set(run).size > 4) expect(wireBinary.includes(run)).toBe(false);
    }
  }
  return { wireBinary, checked };
}

describe.skipIf(!present)('federated privacy on real RSNA radiographs', () => {
  let scratch = '';
  let out = '';
  let coco: CocoDataset = { images: [], annotations: [], categories: [] };
  let cocoPath = '';
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'fedcxr-fed-rsna-'));
    subset(join(scratch, 'src'));
    out = join(scratch, 'coco');
    const imported = await runCli([
      'dataset',
      'import',
      '--format',
      'rsna',
      join(scratch, 'src'),
      '--out',
      out,
      '--size',
      '128',
      '--json',
    ]);
    expect(imported.exitCode, imported.stdout + imported.stderr).toBe(0);
    cocoPath = join(out, 'annotations.json');
    coco = JSON.parse(readFileSync(cocoPath, 'utf8')) as CocoDataset;
    expect(coco.images).toHaveLength(40);
  }, 120_000);
  afterAll(() => (scratch ? rm(scratch, { recursive: true, force: true }) : undefined));

  it('the small model: sends only tensors and aggregate scalars, no PatientID, no pixels', async () => {
    const rows = await rowsFromCoco(cocoPath);
    const model = { features: rows.features, classes: 2, hidden: 0 };
    const shards = shardByPatient(rows, 2, 'patient', 1).map((r) => selectRows(rows, r));

    const coordinator = new Coordinator(
      {
        port: 0,
        stateDir: join(scratch, 'state'),
        adminToken: 'rsna-admin-token-0123456789',
        sites: ['site-1', 'site-2'].map((id) => ({ id, token: `${id}-token-0123456789` })),
        round: { minSites: 2, timeoutMs: 60_000, learningRate: 0.5, batchSize: 8, epochs: 2 },
      },
      { initialModel: createTabularModel(model, 1) },
    );
    const url = await coordinator.start();
    const text: string[] = [];
    const binary: Buffer[] = [];
    const agents: SiteAgent[] = [];
    try {
      shards.forEach((shard: LabelledRows, i) => {
        const { train, validation } = splitValidation(shard, 0.25, i);
        const agent = new SiteAgent({
          url,
          siteId: `site-${i + 1}`,
          token: `site-${i + 1}-token-0123456789`,
          trainer: new TabularTrainer(model, train, validation, { learningRate: 0.5, batchSize: 8 }),
          // Every packet engine.io writes for this site, handshake included: the real wire content.
          onSocket: (socket) =>
            socket.io.engine.on('packetCreate', (packet: { data?: unknown }) => {
              if (typeof packet.data === 'string') text.push(packet.data);
              else if (packet.data) binary.push(Buffer.from(packet.data as Uint8Array));
            }),
        });
        agents.push(agent);
      });
      for (const agent of agents) {
        await agent.start();
      }
      for (let r = 0; r < 3; r++) expect((await coordinator.runRound()).outcome).toBe('aggregated');
      await coordinator.evaluate(30_000);
    } finally {
      for (const agent of agents) await agent.stop();
      await coordinator.close();
    }

    const { wireBinary, checked } = await checkWire(text, binary, coco, out, (v) => ALLOWED_STRING.test(v));
    expect(checked).toEqual(expect.arrayContaining(['site-1', 'fc1.weight', 'loss', 'accuracy', 'update:end']));
    // 4. Volume: all binary a site sent is its updates (3 rounds × 65 floats × 4 bytes each), far below one image.
    const updateBytes = (rows.features + 1) * 2 * 4;
    expect(wireBinary.length).toBe(2 * 3 * updateBytes);
    expect(wireBinary.length).toBeLessThan(128 * 128);
  });

  it('Faster R-CNN: a site training the detector sends only tensors and aggregate scalars, no PatientID, no pixels', async () => {
    await initEngine({ backend: 'wasm' }, 'training');
    // One site, patient-disjoint train/validation files of the imported subset (one image per RSNA patient).
    const trainFile = join(scratch, 'site-train.json');
    const valFile = join(scratch, 'site-val.json');
    const part = (images: CocoDataset['images']): CocoDataset => {
      const ids = new Set(images.map((i) => i.id));
      return { ...coco, images, annotations: coco.annotations.filter((a) => ids.has(a.image_id)) };
    };
    writeFileSync(trainFile, JSON.stringify(part(coco.images.slice(0, 30))));
    writeFileSync(valFile, JSON.stringify(part(coco.images.slice(30))));
    const trainer: DetectorTrainerConfig = {
      kind: 'detector',
      detector: 'faster_rcnn',
      backbone: 'resnet18_fpn',
      size: 64,
      train: trainFile,
      batchSize: 4,
      options: { rpn: { preNmsTopN: { training: 200, testing: 200 } }, roi: { representationSize: 128 } },
    };
    const train = await openCocoDataset(trainFile, { imageDir: out });
    const val = await openCocoDataset(valFile, { imageDir: out, categories: train.categories });
    const detector = buildSiteDetector(
      trainer,
      train.categories.map((c) => c.name),
    );
    const initial = federatedWeights(detector);
    const tensorNames = new Set(initial.keys());
    const coordinator = new Coordinator(
      {
        port: 0,
        stateDir: join(scratch, 'state-frcnn'),
        adminToken: 'rsna-admin-token-0123456789',
        sites: [{ id: 'site-1', token: 'site-1-token-0123456789' }],
        round: { minSites: 1, timeoutMs: 300_000, epochs: 1, encoding: 'float16', normBound: 1e6 },
      },
      { initialModel: initial },
    );
    const url = await coordinator.start();
    const text: string[] = [];
    const binary: Buffer[] = [];
    const agent = new SiteAgent({
      url,
      siteId: 'site-1',
      token: 'site-1-token-0123456789',
      trainer: new DetectorTrainer(detector, train, val, detectorTrainerOptions(trainer)),
      onSocket: (socket) =>
        socket.io.engine.on('packetCreate', (packet: { data?: unknown }) => {
          if (typeof packet.data === 'string') text.push(packet.data);
          else if (packet.data) binary.push(Buffer.from(packet.data as Uint8Array));
        }),
    });
    try {
      await agent.start();
      for (let r = 0; r < 2; r++) expect((await coordinator.runRound()).outcome).toBe('aggregated');
      await coordinator.evaluate(120_000);
    } finally {
      await agent.stop();
      await coordinator.close();
      detector.dispose();
    }
    const metric = /^(loss(_[a-z_]+)?|grad_norm|ap|ap50|ar100)$/;
    const { wireBinary, checked } = await checkWire(
      text,
      binary,
      coco,
      out,
      (v) => ALLOWED_STRING.test(v) || v === 'float16' || tensorNames.has(v) || metric.test(v),
    );
    expect(checked).toEqual(
      expect.arrayContaining(['site-1', 'backbone.body.conv1.weight', 'loss_objectness', 'ap50', 'update:end']),
    );
    // 4. Volume: the binary a site sent is exactly its two float16 updates.
    const parameters = [...initial.values()].reduce((n, t) => n + t.data.length, 0);
    expect(wireBinary.length).toBe(2 * parameters * 2);
  }, 600_000);
});
