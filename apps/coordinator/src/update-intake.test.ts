/**
 * A site that re-sends its update replaces the upload it had in flight: the replaced upload's spool file is
 * deleted (no spool outlives its upload), both when the intake sees the replacement itself (a newer
 * connection of the site) and when the site reconnects through the coordinator and sends again.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '@fedcxr/core';
import { createTabularModel, encodeModel, type RoundPlan } from '@fedcxr/federated';
import { afterEach, describe, expect, it } from 'vitest';
import { ask, rawSite, readAudit, sendUpdateBody, updateFor, within } from './attack-harness.js';
import { AuditLog } from './audit.js';
import { coordinatorConfigSchema } from './config.js';
import type { OpenRound } from './round-phase.js';
import { alignedCopy, type RoundJournal, RoundStore } from './round-store.js';
import type { StrategyUpdate } from './strategies/strategy.js';
import { coordinatorConfig, MODEL, newCoordinator, tempDir } from './testing.js';
import { UpdateIntake } from './update-intake.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const spoolsOf = (stateDir: string, round: number) =>
  readdirSync(join(stateDir, 'rounds', String(round).padStart(6, '0'), 'updates'));

describe('a replaced upload', () => {
  it('is dropped with its spool file when the site starts again on a newer connection', async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const config = parseConfig(coordinatorConfigSchema, coordinatorConfig(dir.path, ['site-1', 'site-2']));
    const store = new RoundStore(dir.path, 3);
    await store.create(alignedCopy(encodeModel(createTabularModel(MODEL, 1))));
    const audit = new AuditLog(join(dir.path, 'audit.jsonl'));
    const journal: RoundJournal = {
      round: 1,
      status: 'open',
      baseModelHash: store.state.modelHash,
      seed: 1,
      openedAt: new Date().toISOString(),
      participants: ['site-1', 'site-2'],
      accepted: [],
      seenNonces: [],
    };
    await store.openRound(journal);
    const added: StrategyUpdate[] = [];
    const plan = {
      round: 1,
      modelHash: store.state.modelHash,
      tensors: store.global.specs,
      chunkBytes: 64,
      normBound: 1000,
      deadline: Date.now() + 60_000,
    } as RoundPlan;
    const open: OpenRound = {
      journal,
      plan,
      participants: new Set(journal.participants),
      ingests: new Map(),
      uploads: new Map(),
      aggregator: { add: (update) => void added.push(update), finish: () => ({ shares: [] }) },
      journalWriter: store.journalWriter(journal, () => {}),
      timer: setTimeout(() => {}, 0),
      serial: Promise.resolve(),
      startedAt: Date.now(),
    };
    const intake = new UpdateIntake(config, store, audit, {
      current: () => open,
      collecting: () => true,
      accepted: () => {},
      changed: () => {},
    });

    const first = updateFor(plan, () => 0.001);
    expect(intake.begin('site-1', first.begin, 'connection-a')).toEqual({ ok: true });
    expect(
      intake.chunk('site-1', { round: 1, nonce: first.nonce, index: 0, data: first.bytes.subarray(0, 64) }),
    ).toEqual({ ok: true });
    const firstSpool = store.spoolPath(1, 'site-1', first.nonce);
    expect(existsSync(firstSpool)).toBe(true);
    // The same connection may not start a second upload while one runs…
    expect(intake.begin('site-1', updateFor(plan, () => 0.001).begin, 'connection-a')).toMatchObject({
      ok: false,
      code: 'busy',
    });
    // …but the site's newer connection replaces it: the old upload and its spool go.
    const second = updateFor(plan, () => 0.002);
    expect(intake.begin('site-1', second.begin, 'connection-b')).toEqual({ ok: true });
    expect(existsSync(firstSpool)).toBe(false);
    expect(spoolsOf(dir.path, 1)).toEqual([`site-1-${second.nonce}.f32`]);
    expect([...open.ingests.keys()]).toEqual([second.nonce]);
    expect(readAudit(dir.path).find((e) => e.event === 'update_dropped')).toMatchObject({
      siteId: 'site-1',
      nonce: first.nonce,
      received: 64,
      reason: 'superseded by an upload on a newer connection',
    });
    // The replacement is received and accepted as usual; the old one never reaches the aggregator.
    for (let index = 0, offset = 0; offset < second.bytes.length; index++, offset += 64)
      expect(
        intake.chunk('site-1', {
          round: 1,
          nonce: second.nonce,
          index,
          data: second.bytes.subarray(offset, offset + 64),
        }),
      ).toEqual({ ok: true });
    expect(await intake.end('site-1', { round: 1, nonce: second.nonce })).toEqual({ ok: true });
    expect(added.map((u) => u.nonce)).toEqual([second.nonce]);
    expect(journal.accepted.map((u) => u.nonce)).toEqual([second.nonce]);
    clearTimeout(open.timer);
  });

  it('a site that reconnects mid-upload and re-sends leaves only its new spool, and the round aggregates', async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const coordinator = newCoordinator(dir.path, ['site-1'], { chunkBytes: 1024, minSites: 1 });
    const url = await coordinator.start();
    cleanups.push(() => coordinator.close());
    const before = await rawSite(url, 'site-1');
    const round = await coordinator.startRound();
    const plan = await before.nextPlan();
    const first = updateFor(plan, () => 0.001);
    expect(await ask(before.socket, 'update:begin', first.begin)).toEqual({ ok: true });
    expect(spoolsOf(dir.path, round)).toEqual([`site-1-${first.nonce}.f32`]);
    // The site comes back on a new connection (the coordinator drops the stale one) and sends again.
    const after = await rawSite(url, 'site-1');
    cleanups.push(
      () => void before.socket.disconnect(),
      () => void after.socket.disconnect(),
    );
    const again = await after.nextPlan();
    const closed = coordinator.waitForRound(round);
    const second = updateFor(again, () => 0.002);
    expect(await ask(after.socket, 'update:begin', second.begin)).toEqual({ ok: true });
    expect(spoolsOf(dir.path, round)).toEqual([`site-1-${second.nonce}.f32`]);
    const end = await sendUpdateBody(after.socket, again, second);
    expect(end).toEqual({ ok: true });
    expect((await within(closed, 10_000, 'round closed')).outcome).toBe('aggregated');
    const dropped = readAudit(dir.path).filter(
      (e) => (e.event === 'update_abandoned' || e.event === 'update_dropped') && e.nonce === first.nonce,
    );
    expect(dropped).toHaveLength(1);
  });
});
