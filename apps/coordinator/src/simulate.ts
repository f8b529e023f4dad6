/**
 * `cxr fed simulate`: a coordinator and N site processes on loopback, each site with a patient-disjoint
 * shard, then the same model trained centrally on the union of the shards for the same total epochs
 * (rounds × local epochs), both scored on one held-out, patient-disjoint test split.
 *
 * Data: `synthetic` (Gaussian class clusters with patient ids: CI) or a COCO file, from which the small
 * tabular model learns "has a finding" from 8×8 intensity grids (coco-features.ts): a fast check of the
 * federation itself. `simulate-detector.ts` federates Faster R-CNN the same way. The parent process prepares every shard file (it plays
 * each hospital's data preparation); from then on each site process reads only its own file.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FedcxrError } from '@fedcxr/core';
import {
  createTabularModel,
  evaluateTabular,
  type LabelledRows,
  makeSyntheticRows,
  rowsFromCoco,
  type SplitMode,
  selectRows,
  shardByPatient,
  splitValidation,
  trainCentralized,
  writeSiteData,
} from '@fedcxr/federated';
import type { RoundSummary } from './coordinator.js';
import { runSimulatedFederation, type SimulationCommonOptions } from './federation-run.js';

export interface SimulationOptions extends SimulationCommonOptions {
  /** Hidden units of the small model (0: softmax regression). */
  hidden?: number;
  /** Synthetic rows (default 1200). */
  rows?: number;
}

export interface SimulationReport {
  sites: { id: string; trainRows: number; validationRows: number; patients: number }[];
  testRows: number;
  rounds: RoundSummary[];
  totalEpochs: number;
  federated: { loss: number; accuracy: number };
  centralized: { loss: number; accuracy: number };
  /** federated accuracy / centralized accuracy on the same test split. */
  accuracyRatio: number;
  siteValidation: { numExamples: number; metrics: Record<string, number> };
  data: string;
  split: SplitMode;
  seconds: number;
}

export async function simulate(options: SimulationOptions): Promise<SimulationReport> {
  const started = performance.now();
  const progress = options.onProgress ?? (() => {});
  const seed = options.seed ?? 1;
  const epochs = options.epochs ?? 1;
  const learningRate = options.learningRate ?? 0.1;
  const batchSize = options.batchSize ?? 32;
  if (options.sites < 1 || options.rounds < 1) throw new FedcxrError('usage', '--sites and --rounds must be ≥ 1');

  let rows: LabelledRows;
  if (options.data === 'synthetic') {
    rows = makeSyntheticRows({ rows: options.rows ?? 1200, features: 16, classes: 4, seed, separation: 2 });
  } else {
    progress(`reading images of ${options.data}`);
    rows = await rowsFromCoco(options.data);
  }
  const model = { features: rows.features, classes: rows.classes, hidden: options.hidden ?? 0 };

  // Hold out ~20 % of patients as the common test split, then shard the rest by patient.
  const { train: pool, validation: test } = splitValidation(rows, 0.2, seed);
  const shards = shardByPatient(pool, options.sites, options.split, seed);

  const ownDir = !options.workDir;
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'fedcxr-sim-'));
  mkdirSync(workDir, { recursive: true });
  const siteIds = shards.map((_, i) => `site-${i + 1}`);
  const siteSummaries: SimulationReport['sites'] = [];
  const siteTrains: LabelledRows[] = [];
  for (let i = 0; i < shards.length; i++) {
    const shard = selectRows(pool, shards[i]);
    const { train, validation } = splitValidation(shard, 0.2, seed + i + 1);
    siteTrains.push(train);
    siteSummaries.push({
      id: siteIds[i],
      trainRows: train.y.length,
      validationRows: validation.y.length,
      patients: new Set(shard.patientIds).size,
    });
    await writeSiteData(join(workDir, `${siteIds[i]}.data.json`), train, validation, model);
  }

  const initial = createTabularModel(model, seed);
  const trainer = { kind: 'tabular', hidden: model.hidden, learningRate, batchSize };
  try {
    const federation = await runSimulatedFederation({
      workDir,
      trainers: new Map(siteIds.map((id) => [id, { ...trainer, data: `${id}.data.json` }])),
      initialModel: initial,
      rounds: options.rounds,
      round: {
        epochs,
        mu: options.mu ?? 0,
        learningRate,
        batchSize,
        encoding: options.encoding ?? 'float32',
        aggregation: options.aggregation ?? 'fedavg',
        aggregationOptions: options.aggregationOptions ?? {},
        serverLearningRate: options.serverLearningRate ?? 1,
        timeoutMs: 600_000,
        seed,
      },
      progress,
      describeRound: (summary) =>
        `round ${summary.round}: ${summary.sites.length} sites, train loss ${summary.train.loss?.toFixed(4)}, ` +
        `val accuracy (model ${summary.round - 1}) ${summary.validation.accuracy?.toFixed(4)}`,
      onCoordinator: options.onCoordinator,
      beforeRound: options.beforeRound,
    });
    const federated = evaluateTabular(model, federation.globalModel, test).metrics;
    progress(
      `centralized baseline: ${options.rounds * epochs} epochs on ${siteTrains.reduce((n, t) => n + t.y.length, 0)} rows`,
    );
    const union = concatRows(siteTrains);
    const centralizedModel = await trainCentralized(model, initial, union, options.rounds * epochs, {
      learningRate,
      batchSize,
      seed,
    });
    const centralized = evaluateTabular(model, centralizedModel, test).metrics;
    return {
      sites: siteSummaries,
      testRows: test.y.length,
      rounds: federation.rounds,
      totalEpochs: options.rounds * epochs,
      federated: { loss: federated.loss, accuracy: federated.accuracy },
      centralized: { loss: centralized.loss, accuracy: centralized.accuracy },
      accuracyRatio: centralized.accuracy > 0 ? federated.accuracy / centralized.accuracy : 0,
      siteValidation: {
        numExamples: federation.siteValidation.numExamples,
        metrics: federation.siteValidation.metrics,
      },
      data: options.data,
      split: options.split,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (ownDir) rmSync(workDir, { recursive: true, force: true });
  }
}

function concatRows(parts: LabelledRows[]): LabelledRows {
  const features = parts[0].features;
  const n = parts.reduce((s, p) => s + p.y.length, 0);
  const x = new Float32Array(n * features);
  const y = new Int32Array(n);
  const patientIds: string[] = [];
  let offset = 0;
  for (const p of parts) {
    x.set(p.x, offset * features);
    y.set(p.y, offset);
    patientIds.push(...p.patientIds);
    offset += p.y.length;
  }
  return { features, classes: parts[0].classes, x, y, patientIds };
}
