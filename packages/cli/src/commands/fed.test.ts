import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '@fedcxr/coordinator';
import {
  createTabularModel,
  makeSyntheticRows,
  siteAgentFromConfig,
  splitValidation,
  writeSiteData,
} from '@fedcxr/federated';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { runCli } from '../testing.js';

const dir = mkdtempSync(join(tmpdir(), 'fedcxr-cli-fed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ADMIN = 'cli-admin-token-0123456789';
const TOKEN = 'cli-site-token-0123456789';

describe('cxr fed', () => {
  it('certs writes a CA, a server certificate and site certificates', async () => {
    const run = await runCli(['fed', 'certs', '--out', join(dir, 'certs'), '--site', 'site-a', '--json']);
    expect(run.exitCode).toBe(0);
    const files = run.json<{ ca: string; serverCert: string; sites: { cert: string }[] }>();
    expect(readFileSync(files.ca, 'utf8')).toMatch(/BEGIN CERTIFICATE/);
    expect(existsSync(files.serverCert)).toBe(true);
    expect(files.sites).toHaveLength(1);
  });

  it('coordinator --config runs its schedule with a site from site.yaml, then exits', async () => {
    const rows = makeSyntheticRows({ rows: 120, features: 4, classes: 2, seed: 1, separation: 3 });
    const { train, validation } = splitValidation(rows, 0.2, 1);
    await writeSiteData(join(dir, 'site-a.json'), train, validation, { features: 4, classes: 2 });
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    writeFileSync(
      join(dir, 'coordinator.yaml'),
      YAML.stringify({
        port,
        stateDir: join(dir, 'coord-state'),
        adminToken: ADMIN,
        sites: [{ id: 'site-a', token: TOKEN }],
        model: { kind: 'tabular', features: 4, classes: 2 },
        round: { minSites: 1, timeoutMs: 20_000, learningRate: 0.3 },
        schedule: { rounds: 2, minOnline: 1 },
      }),
    );
    const siteYaml = join(dir, 'site.yaml');
    writeFileSync(
      siteYaml,
      YAML.stringify({
        siteId: 'site-a',
        token: TOKEN,
        coordinator: `http://127.0.0.1:${port}`,
        trainer: { kind: 'tabular', data: 'site-a.json' },
      }),
    );
    const coordinatorRun = runCli([
      'fed',
      'coordinator',
      '--config',
      join(dir, 'coordinator.yaml'),
      '--exit-when-done',
      '--json',
    ]);
    const { parseConfig } = await import('@fedcxr/core');
    const { siteConfigSchema } = await import('@fedcxr/federated');
    const agent = await siteAgentFromConfig(
      parseConfig(siteConfigSchema, YAML.parse(readFileSync(siteYaml, 'utf8')), siteYaml),
      siteYaml,
    );
    for (let i = 0; i < 50; i++) {
      try {
        await agent.start();
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const run = await coordinatorRun;
    await agent.stop();
    expect(run.exitCode).toBe(0);
    const out = run.json<{ stopped: string; history: { outcome: string; sites: string[] }[] }>();
    expect(out.stopped).toBe('done');
    expect(out.history.map((h) => h.outcome)).toEqual(['aggregated', 'aggregated']);
    expect(out.history[0].sites).toEqual(['site-a']);
  });

  it('round start and status talk to the admin API; a wrong token is refused', async () => {
    const coordinator = new Coordinator(
      {
        port: 0,
        stateDir: join(dir, 'admin-state'),
        adminToken: ADMIN,
        sites: [{ id: 'site-a', token: TOKEN }],
        round: { timeoutMs: 60_000 },
      },
      { initialModel: createTabularModel({ features: 2, classes: 2, hidden: 0 }, 1) },
    );
    const url = await coordinator.start();
    try {
      const refused = await runCli([
        'fed',
        'round',
        'start',
        '--coordinator',
        url,
        '--admin-token',
        'wrong-token-xxxxxxxx',
      ]);
      expect(refused.exitCode).toBe(3);
      expect(refused.stderr).toMatch(/401 admin token required/);
      const started = await runCli(['fed', 'round', 'start', '--coordinator', url, '--admin-token', ADMIN, '--json']);
      expect(started.json()).toEqual({ round: 1 });
      const anonymous = await runCli(['fed', 'status', '--coordinator', url]);
      expect(anonymous.exitCode).toBe(2);
      expect(anonymous.stderr).toMatch(/needs a credential/);
      const wrong = await runCli(['fed', 'status', '--coordinator', url, '--token', 'wrong-token-xxxxxxxx']);
      expect(wrong.exitCode).toBe(3);
      expect(wrong.stderr).toMatch(/401/);
      const status = await runCli(['fed', 'status', '--coordinator', url, '--token', ADMIN]);
      expect(status.stdout).toMatch(/round 1 open \(0\/0\)/);
      expect(status.stdout).toMatch(/site-a\s+offline/);
    } finally {
      await coordinator.close();
    }
  });

  it('site --config joins a coordinator, trains, and exits after --rounds updates', async () => {
    const coordinator = new Coordinator(
      {
        port: 0,
        stateDir: join(dir, 'site-cmd-state'),
        adminToken: ADMIN,
        sites: [{ id: 'site-a', token: TOKEN }],
        round: { minSites: 1, timeoutMs: 30_000 },
      },
      { initialModel: createTabularModel({ features: 4, classes: 2, hidden: 0 }, 1) },
    );
    const url = await coordinator.start();
    try {
      const rows = makeSyntheticRows({ rows: 80, features: 4, classes: 2, seed: 2, separation: 3 });
      const { train, validation } = splitValidation(rows, 0.2, 2);
      await writeSiteData(join(dir, 'site-cmd.json'), train, validation, { features: 4, classes: 2 });
      const config = join(dir, 'site-cmd.yaml');
      writeFileSync(
        config,
        YAML.stringify({
          siteId: 'site-a',
          token: TOKEN,
          coordinator: url,
          trainer: { kind: 'tabular', data: 'site-cmd.json' },
        }),
      );
      const site = runCli(['fed', 'site', '--config', config, '--rounds', '1', '--json']);
      for (let i = 0; i < 100 && !coordinator.snapshot().sites[0].online; i++)
        await new Promise((r) => setTimeout(r, 50));
      const summary = await coordinator.runRound();
      const run = await site;
      expect(run.exitCode).toBe(0);
      expect(run.json()).toMatchObject({ siteId: 'site-a', submitted: [1], stopped: 'done' });
      expect(summary.sites).toEqual(['site-a']);
    } finally {
      await coordinator.close();
    }
  });

  it('simulate --json reports federated against centralized, and --report draws it', async () => {
    const page = join(dir, 'simulation.html');
    const run = await runCli([
      'fed',
      'simulate',
      '--sites',
      '2',
      '--rounds',
      '2',
      '--split',
      'non-iid',
      '--report',
      page,
      '--json',
    ]);
    expect(run.exitCode).toBe(0);
    const report = run.json<{
      rounds: unknown[];
      accuracyRatio: number;
      federated: { accuracy: number };
      split: string;
    }>();
    expect(report.rounds).toHaveLength(2);
    expect(report.split).toBe('non-iid');
    expect(report.accuracyRatio).toBeGreaterThan(0);
    const html = readFileSync(page, 'utf8');
    expect(html).toContain(`federated / centralized accuracy: ${report.accuracyRatio.toFixed(4)}`);
    expect(html.match(/<svg/g)?.length).toBe(3);
  });

  it('secure aggregation with a non-linear strategy is refused before anything starts, naming both fields', async () => {
    const config = join(dir, 'secagg-median.yaml');
    const stateDir = join(dir, 'secagg-median-state');
    writeFileSync(
      config,
      YAML.stringify({
        stateDir,
        adminToken: ADMIN,
        sites: [{ id: 'site-a', token: TOKEN }],
        model: { kind: 'tabular', features: 4, classes: 2 },
        round: { secureAggregation: true, aggregation: 'median' },
      }),
    );
    const run = await runCli(['fed', 'coordinator', '--config', config]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(
      /secagg-median.yaml: invalid config:[\s\S]*round\.aggregation: round\.secureAggregation admits only linear strategies, and round\.aggregation "median" is not linear/,
    );
    expect(existsSync(stateDir)).toBe(false);
  });

  it('simulate --aggregation takes any registered strategy and checks its options', async () => {
    const unknown = await runCli(['fed', 'simulate', '--aggregation', 'krum']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(
      /--aggregation krum: unknown aggregation strategy "krum"; registered: fedavg, fedprox, median, trimmed-mean/,
    );
    const prox = await runCli(['fed', 'simulate', '--aggregation', 'fedprox']);
    expect(prox.exitCode).toBe(2);
    expect(prox.stderr).toMatch(/--aggregation fedprox: fedprox: FedProx needs its proximal coefficient μ > 0/);
  });

  it('bad flags and configs exit 2 naming the problem', async () => {
    expect((await runCli(['fed', 'simulate', '--split', 'random'])).stderr).toMatch(/--split must be/);
    expect((await runCli(['fed', 'simulate', '--model', 'yolo'])).stderr).toMatch(
      /--model must be faster_rcnn or tabular/,
    );
    expect((await runCli(['fed', 'simulate', '--model', 'faster_rcnn', '--backend', 'tpu'])).stderr).toMatch(
      /--backend must be auto or one of/,
    );
    writeFileSync(join(dir, 'bad.yaml'), YAML.stringify({ stateDir: 'x', adminToken: 'short', sites: [] }));
    const bad = await runCli(['fed', 'coordinator', '--config', join(dir, 'bad.yaml')]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/bad.yaml: invalid config:[\s\S]*adminToken/);
  });
});
