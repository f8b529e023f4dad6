/**
 * The part every simulation shares: a coordinator on loopback, one site process per site (each reads only its
 * own config and data files), `rounds` aggregated rounds, then the sites' evaluation of the final global model.
 * A round that does not aggregate stops the simulation with its reason: a simulation never reports a
 * federation that silently lost a site.
 */
import { join } from 'node:path';
import { FedcxrError, type NamedTensors } from '@fedcxr/core';
import {
  type SiteConfigInput,
  type SiteProcess,
  type SplitMode,
  spawnSiteProcess,
  writePrivateJsonAtomic,
} from '@fedcxr/federated';
import type { AggregationRule } from './aggregation.js';
import type { CoordinatorConfigInput } from './config.js';
import { Coordinator, type RoundSummary, randomToken } from './coordinator.js';

/** What every `cxr fed simulate` takes, whatever the model. */
export interface SimulationCommonOptions {
  sites: number;
  /** 'synthetic' or the path of a COCO file. */
  data: string;
  split: SplitMode;
  rounds: number;
  /** Local epochs per round. */
  epochs?: number;
  mu?: number;
  /** A registered aggregation strategy (default fedavg) and its options. */
  aggregation?: AggregationRule;
  aggregationOptions?: Record<string, unknown>;
  /** Server learning rate η: global += η · aggregate(deltas) (1: plain FedAvg). */
  serverLearningRate?: number;
  encoding?: 'float32' | 'float16' | 'int8';
  learningRate?: number;
  batchSize?: number;
  seed?: number;
  /** Working directory (state, shards, configs); a temp dir removed afterwards when absent. */
  workDir?: string;
  onProgress?: (message: string) => void;
  /** Called once the coordinator listens (for dashboards/tests). */
  onCoordinator?: (coordinator: Coordinator) => void;
  /** Awaited before each round, once every site is connected (lets a viewer follow round by round). */
  beforeRound?: (round: number) => Promise<void>;
}

export interface FederationRunOptions {
  workDir: string;
  /** Site id → the `trainer:` section of its config (paths relative to workDir). */
  trainers: Map<string, SiteConfigInput['trainer']>;
  initialModel: NamedTensors;
  round: CoordinatorConfigInput['round'];
  rounds: number;
  /** Site-process settings shared by every site (engine, plugins). */
  site?: Pick<SiteConfigInput, 'engine' | 'plugins'>;
  /** How long a site process may take to start and connect (model building included). */
  readyTimeoutMs?: number;
  /** How long the sites may take to evaluate the final model on their validation splits. */
  evaluateTimeoutMs?: number;
  progress: (message: string) => void;
  describeRound: (summary: RoundSummary) => string;
  onCoordinator?: (coordinator: Coordinator) => void;
  beforeRound?: (round: number) => Promise<void>;
}

export interface FederationRun {
  rounds: RoundSummary[];
  siteValidation: { numExamples: number; metrics: Record<string, number>; sites: string[] };
  globalModel: NamedTensors;
  seconds: number;
}

export async function runSimulatedFederation(options: FederationRunOptions): Promise<FederationRun> {
  const started = performance.now();
  const siteIds = [...options.trainers.keys()];
  const tokens = new Map(siteIds.map((id) => [id, randomToken()]));
  const coordinator = new Coordinator(
    {
      host: '127.0.0.1',
      port: 0,
      stateDir: join(options.workDir, 'coordinator'),
      adminToken: randomToken(),
      sites: siteIds.map((id) => ({ id, token: tokens.get(id) ?? '' })),
      round: { minSites: siteIds.length, ...options.round },
    },
    { initialModel: options.initialModel, log: options.progress },
  );
  const processes: SiteProcess[] = [];
  try {
    const url = await coordinator.start();
    options.onCoordinator?.(coordinator);
    options.progress(`coordinator on ${url}; starting ${siteIds.length} site processes`);
    for (const id of siteIds) {
      const config: SiteConfigInput = {
        siteId: id,
        token: tokens.get(id) ?? '',
        coordinator: url,
        trainer: options.trainers.get(id) ?? { kind: 'missing' },
        ...options.site,
      };
      const path = join(options.workDir, `${id}.site.json`);
      // The site's config holds its token: 0600 from the start.
      await writePrivateJsonAtomic(path, config);
      processes.push(spawnSiteProcess(id, path, { readyTimeoutMs: options.readyTimeoutMs }));
    }
    await Promise.all(processes.map((p) => p.ready));
    const rounds: RoundSummary[] = [];
    for (let r = 0; r < options.rounds; r++) {
      await options.beforeRound?.(r + 1);
      const summary = await coordinator.runRound();
      if (summary.outcome !== 'aggregated')
        throw new FedcxrError('round_failed', `round ${summary.round} failed: ${summary.reason}`);
      rounds.push(summary);
      options.progress(options.describeRound(summary));
    }
    const siteValidation = await coordinator.evaluate(options.evaluateTimeoutMs);
    return {
      rounds,
      siteValidation: {
        numExamples: siteValidation.numExamples,
        metrics: siteValidation.metrics,
        sites: siteValidation.sites,
      },
      globalModel: coordinator.globalModel,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    for (const p of processes) p.kill();
    await Promise.all(
      processes.map(
        (p) =>
          new Promise((resolve) =>
            p.child.exitCode !== null || p.child.signalCode !== null ? resolve(null) : p.child.once('exit', resolve),
          ),
      ),
    );
    await coordinator.close();
  }
}
