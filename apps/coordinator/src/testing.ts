/** Shared fixtures for the coordinator's tests: a temp state dir, site data, configs and agents. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTabularModel,
  type LabelledRows,
  makeSyntheticRows,
  SiteAgent,
  type SiteAgentOptions,
  selectRows,
  shardByPatient,
  splitValidation,
  type TabularModelOptions,
  TabularTrainer,
} from '@fedcxr/federated';
import type { CoordinatorConfigInput } from './config.js';
import { Coordinator } from './coordinator.js';

export const MODEL: TabularModelOptions = { features: 8, classes: 3, hidden: 0 };
export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';

export function siteToken(id: string): string {
  return `token-of-${id}-0123456789`;
}

export function tempDir(prefix = 'fedcxr-fed-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface SiteFixture {
  id: string;
  train: LabelledRows;
  validation: LabelledRows;
}

export function makeSiteData(sites: number, rowsPerSite = 120, seed = 7): { sites: SiteFixture[]; test: LabelledRows } {
  const all = makeSyntheticRows({ rows: rowsPerSite * sites + 200, ...MODEL, seed, separation: 3 });
  const testRows = Array.from({ length: 200 }, (_, i) => i);
  const rest = selectRows(
    all,
    Array.from({ length: all.y.length - 200 }, (_, i) => i + 200),
  );
  const shards = shardByPatient(rest, sites, 'patient', seed);
  return {
    test: selectRows(all, testRows),
    sites: shards.map((rows, i) => {
      const { train, validation } = splitValidation(selectRows(rest, rows), 0.2, seed + i);
      return { id: `site-${i + 1}`, train, validation };
    }),
  };
}

export function coordinatorConfig(
  stateDir: string,
  siteIds: string[],
  round: CoordinatorConfigInput['round'] = {},
): CoordinatorConfigInput {
  return {
    host: '127.0.0.1',
    port: 0,
    stateDir,
    adminToken: ADMIN_TOKEN,
    sites: siteIds.map((id) => ({ id, token: siteToken(id) })),
    round: { epochs: 1, minSites: siteIds.length, timeoutMs: 20_000, learningRate: 0.2, batchSize: 16, ...round },
  };
}

export function newCoordinator(
  stateDir: string,
  siteIds: string[],
  round: CoordinatorConfigInput['round'] = {},
  model: TabularModelOptions = MODEL,
): Coordinator {
  return new Coordinator(coordinatorConfig(stateDir, siteIds, round), { initialModel: createTabularModel(model, 1) });
}

export function trainerFor(site: SiteFixture, model: TabularModelOptions = MODEL): TabularTrainer {
  return new TabularTrainer(model, site.train, site.validation);
}

export function newAgent(url: string, site: SiteFixture, extra: Partial<SiteAgentOptions> = {}): SiteAgent {
  return new SiteAgent({
    url,
    siteId: site.id,
    token: siteToken(site.id),
    trainer: trainerFor(site),
    ackTimeoutMs: 5000,
    ...extra,
  });
}
