/**
 * A coordinator PROCESS killed with SIGKILL mid-round (no chance to clean up), restarted on the same state
 * dir and port: the accepted round survives, the open round resumes with the updates it had accepted, the
 * sites reconnect by themselves, and the round completes.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTabularModel, encodeModel, type SiteAgent } from '@fedcxr/federated';
import { afterAll, describe, expect, it } from 'vitest';
import { coordinatorConfig, MODEL, makeSiteData, newAgent, tempDir, trainerFor } from './testing.js';

const dir = tempDir('fedcxr-crash-');
const children: ChildProcess[] = [];
const agents: SiteAgent[] = [];
afterAll(async () => {
  for (const agent of agents) await agent.stop();
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (!process.env.FED_KEEP) dir.remove();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

type Message = { type: string; [key: string]: unknown };

function startCoordinatorProcess(configPath: string): {
  child: ChildProcess;
  next(type: string, match?: (m: Message) => boolean): Promise<Message>;
} {
  const here = import.meta.url;
  const child = fork(fileURLToPath(new URL('./coordinator-process.ts', here)), [configPath], {
    execArgv: [
      '--experimental-transform-types',
      '--no-warnings',
      '--import',
      fileURLToPath(new URL('../../../packages/federated/src/ts-source-register.mjs', here)),
    ],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  children.push(child);
  const seen: Message[] = [];
  const waiters: { type: string; match?: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  child.on('message', (m: Message) => {
    const i = waiters.findIndex((w) => w.type === m.type && (!w.match || w.match(m)));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else seen.push(m);
  });
  return {
    child,
    next: (type, match) => {
      const i = seen.findIndex((m) => m.type === type && (!match || match(m)));
      if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0]);
      return new Promise((resolve) => waiters.push({ type, match, resolve }));
    },
  };
}

describe('coordinator process killed with SIGKILL mid-round', () => {
  it('restarts on the same state: no accepted round or update lost, the round completes', async () => {
    const data = makeSiteData(3, 60);
    const ids = data.sites.map((s) => s.id);
    const port = await freePort();
    const modelPath = join(dir.path, 'initial.fcxw');
    writeFileSync(modelPath, encodeModel(createTabularModel(MODEL, 1)));
    const configPath = join(dir.path, 'coordinator.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        ...coordinatorConfig(join(dir.path, 'state'), ids, { timeoutMs: 60_000 }),
        port,
        initialModel: modelPath,
      }),
    );

    const first = startCoordinatorProcess(configPath);
    const { url } = (await first.next('listening')) as unknown as { url: string };
    // In round 2, site-3 trains slowly: held until the coordinator has been killed.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    for (const site of data.sites) {
      const inner = trainerFor(site);
      const agent = newAgent(url, site, {
        log: process.env.FED_DEBUG ? (m) => console.log(Date.now() % 100000, m) : undefined,
        trainer: {
          train: async (global, plan, signal) => {
            if (site.id === 'site-3' && plan.round === 2) await held;
            return inner.train(global, plan, signal);
          },
          evaluate: (global) => inner.evaluate(global),
        },
      });
      await agent.start();
      agents.push(agent);
    }
    first.child.send({ type: 'start-round' });
    expect(await first.next('round-closed')).toMatchObject({ round: 1, outcome: 'aggregated' });
    first.child.send({ type: 'start-round' });
    await first.next('round-opened', (m) => m.round === 2);
    await first.next('update-accepted', (m) => m.siteId === 'site-1' && m.round === 2);
    await first.next('update-accepted', (m) => m.siteId === 'site-2' && m.round === 2);
    const exited = new Promise((resolve) => first.child.once('exit', (_code, signal) => resolve(signal)));
    first.child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const second = startCoordinatorProcess(configPath);
    expect(await second.next('listening')).toMatchObject({ round: 2, history: 1 });
    release();
    expect(await second.next('round-closed')).toMatchObject({ round: 2, outcome: 'aggregated' });
    second.child.kill('SIGTERM');
    const audit = readFileSync(join(dir.path, 'state', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; round?: number; siteId?: string });
    const accepted = audit.filter((e) => e.event === 'update_accepted' && e.round === 2).map((e) => e.siteId);
    expect(accepted.sort()).toEqual(['site-1', 'site-2', 'site-3']);
    expect(audit.some((e) => e.event === 'round_resumed' && e.round === 2)).toBe(true);
    const state = JSON.parse(readFileSync(join(dir.path, 'state', 'state.json'), 'utf8')) as {
      history: { round: number; sites: string[] }[];
    };
    expect(state.history.map((h) => h.round)).toEqual([1, 2]);
    expect(state.history[1].sites.sort()).toEqual(['site-1', 'site-2', 'site-3']);
  });
});
