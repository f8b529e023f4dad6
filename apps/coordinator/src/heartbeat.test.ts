/**
 * A site's training step holds its event loop (Faster R-CNN on a CPU: seconds per step). With a heartbeat
 * timeout shorter than the step the connection drops mid-training: the site must finish the training it is
 * doing and upload it after reconnecting — not restart the round on every reconnection (which never ends when
 * every step outlasts the timeout). With the configured, longer timeout it stays connected throughout.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalTrainer } from '@fedcxr/federated';
import { createTabularModel } from '@fedcxr/federated';
import { afterAll, describe, expect, it } from 'vitest';
import { Coordinator } from './coordinator.js';
import { coordinatorConfig, MODEL, makeSiteData, newAgent, tempDir, trainerFor } from './testing.js';

const dir = tempDir('fedcxr-heartbeat-');
afterAll(() => dir.remove());

/** Wraps a trainer so that training blocks the event loop for `blockMs` first, as a long tensor step does. */
function blocking(inner: LocalTrainer, blockMs: number, calls: { train: number }): LocalTrainer {
  return {
    train: async (global, plan, signal) => {
      calls.train++;
      const until = Date.now() + blockMs;
      while (Date.now() < until) {
        // busy: no timers, no socket I/O
      }
      return inner.train(global, plan, signal);
    },
    evaluate: (global) => inner.evaluate(global),
  };
}

async function roundWithBlockingSite(stateDir: string, heartbeat: { intervalMs: number; timeoutMs: number }) {
  const { sites } = makeSiteData(1, 60);
  const coordinator = new Coordinator(
    { ...coordinatorConfig(stateDir, ['site-1']), heartbeat },
    { initialModel: createTabularModel(MODEL, 1) },
  );
  const url = await coordinator.start();
  const calls = { train: 0 };
  const agent = newAgent(url, sites[0], { trainer: blocking(trainerFor(sites[0]), 2500, calls) });
  try {
    await agent.start();
    const summary = await coordinator.runRound();
    const events = readFileSync(join(stateDir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; reason?: string });
    return { summary, calls, disconnects: events.filter((e) => e.event === 'site_disconnected') };
  } finally {
    await agent.stop();
    await coordinator.close();
  }
}

describe('coordinator heartbeat', () => {
  it('a step longer than the heartbeat timeout drops the connection; the site trains once and uploads after reconnecting', async () => {
    const { summary, disconnects, calls } = await roundWithBlockingSite(join(dir.path, 'short'), {
      intervalMs: 200,
      timeoutMs: 300,
    });
    expect(disconnects.length).toBeGreaterThan(0);
    expect(summary.outcome).toBe('aggregated');
    expect(summary.sites).toEqual(['site-1']);
    expect(calls.train).toBe(1);
  }, 60_000);

  it('with a timeout longer than the step, the site stays connected', async () => {
    const { summary, disconnects, calls } = await roundWithBlockingSite(join(dir.path, 'long'), {
      intervalMs: 200,
      timeoutMs: 5000,
    });
    expect(disconnects).toEqual([]);
    expect(calls.train).toBe(1);
    expect(summary.outcome).toBe('aggregated');
  }, 60_000);
});
