/**
 * Secure aggregation through the real protocol: sites publish X25519 keys, exchange encrypted Shamir shares
 * of their self-mask seeds and masking keys through the coordinator, and upload fixed-point updates under a
 * self mask plus pairwise masks; the coordinator only ever holds masked bytes and their modular sum, and
 * unmasks it from the survivors' shares (of the survivors' seeds, and of a dropped site's masking key). The
 * result equals, bit for bit, the fixed-point FedAvg of the surviving sites (recomputed here from the same
 * deterministic local training), and plain float FedAvg to fixed-point precision. A coordinator that asks
 * for both secrets of one site in a round is refused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NamedTensors } from '@fedcxr/core';
import {
  addMasked,
  dequantize,
  type LocalTrainer,
  quantize,
  type SiteAgent,
  type SiteAgentOptions,
  type SiteEvent,
  secaggRevealReplySchema,
  subtractTensors,
} from '@fedcxr/federated';
import type { Socket } from 'socket.io';
import { afterEach, describe, expect, it } from 'vitest';
import type { Coordinator } from './coordinator.js';
import { MODEL, makeSiteData, newAgent, newCoordinator, tempDir, trainerFor } from './testing.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function plainFedAvg(
  global: NamedTensors,
  trainers: LocalTrainer[],
  seed: number,
  round: number,
): Promise<Float32Array> {
  const flat = Float32Array.from([...global.values()].flatMap((t) => [...t.data]));
  const sum = new Float32Array(flat.length);
  let total = 0;
  for (const trainer of trainers) {
    const result = await trainer.train(global, { round, epochs: 1, mu: 0, seed, learningRate: 0.2, batchSize: 16 });
    const delta = Float32Array.from([...subtractTensors(result.weights!, global).values()].flatMap((t) => [...t.data]));
    for (let i = 0; i < sum.length; i++) sum[i] += result.numExamples * delta[i];
    total += result.numExamples;
  }
  return flat.map((v, i) => v + sum[i] / total);
}

/**
 * What the coordinator must produce, bit for bit: each site's round(n·δ·scale) mod 2^32 (δ·n in float32, as
 * the site computes it), summed mod 2^32, dequantized, divided by Σ n and added to the global weights.
 */
async function fixedPointFedAvg(
  global: NamedTensors,
  trainers: LocalTrainer[],
  seed: number,
  round: number,
  scale: number,
): Promise<{ model: Float32Array; quantized: Uint32Array[] }> {
  const flat = Float32Array.from([...global.values()].flatMap((t) => [...t.data]));
  const sum = new Uint32Array(flat.length);
  const quantized: Uint32Array[] = [];
  let total = 0;
  for (const trainer of trainers) {
    const result = await trainer.train(global, { round, epochs: 1, mu: 0, seed, learningRate: 0.2, batchSize: 16 });
    const delta = [...(result.delta ?? subtractTensors(result.weights!, global)).values()].flatMap((t) => [...t.data]);
    const q = quantize(
      Float32Array.from(delta, (v) => v * result.numExamples),
      scale,
    );
    quantized.push(q);
    addMasked(sum, q);
    total += result.numExamples;
  }
  const mean = dequantize(sum, scale);
  return { model: Float32Array.from(flat, (v, i) => v + mean[i] / total), quantized };
}

/** The coordinator's connection to one site, to play a lying coordinator in a test. */
function siteSocket(coordinator: Coordinator, siteId: string): Socket {
  return (coordinator as unknown as { sites: Map<string, { socket?: Socket }> }).sites.get(siteId)!.socket!;
}

const flatModel = (coordinator: Coordinator) =>
  Float32Array.from([...coordinator.globalModel.values()].flatMap((t) => [...t.data]));

describe('secure aggregation over the protocol', () => {
  it('aggregates masked updates exactly, and recovers when a keyed site drops out', async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const data = makeSiteData(3, 60);
    const ids = data.sites.map((s) => s.id);
    const coordinator = newCoordinator(dir.path, ids, {
      secureAggregation: true,
      secaggScale: 4096,
      minSites: 2,
      timeoutMs: 2500,
    });
    const url = await coordinator.start();
    cleanups.push(() => coordinator.close());
    let dropSite3 = false;
    // What site-1 uploads and reveals, exactly as it leaves the site.
    const uploads = new Map<number, Uint8Array[]>();
    const reveals: unknown[] = [];
    const agents = data.sites.map((site) => {
      const inner = trainerFor(site);
      return newAgent(url, site, {
        onSend: (event: SiteEvent, payload: unknown) => {
          if (site.id !== 'site-1') return;
          if (event === 'update:chunk') {
            const chunk = payload as { round: number; data: Uint8Array };
            uploads.set(chunk.round, [...(uploads.get(chunk.round) ?? []), chunk.data]);
          }
          if (event === ('secagg:reveal' as SiteEvent)) reveals.push(payload);
        },
        trainer: {
          // site-3 publishes its key, then dies during training in round 2.
          train: (g, p, s) => (site.id === 'site-3' && dropSite3 ? new Promise(() => {}) : inner.train(g, p, s)),
          evaluate: (g) => inner.evaluate(g),
        },
      });
    });
    for (const a of agents) await a.start();
    cleanups.push(async () => {
      for (const a of agents) await a.stop();
    });

    const initial = coordinator.globalModel;
    const seed1 = 1; // round seed = config seed (0) · 1_000_003 + round
    const expected1 = await plainFedAvg(
      initial,
      data.sites.map((s) => trainerFor(s)),
      seed1,
      1,
    );
    const exact1 = await fixedPointFedAvg(
      initial,
      data.sites.map((s) => trainerFor(s)),
      seed1,
      1,
      4096,
    );
    const r1 = await coordinator.runRound();
    expect(r1.outcome).toBe('aggregated');
    const got1 = flatModel(coordinator);
    expect(got1).toEqual(exact1.model);
    for (let i = 0; i < got1.length; i++) expect(Math.abs(got1[i] - expected1[i])).toBeLessThan(2e-3);
    // site-1's upload is its update under masks: no coordinate within 1 (of ±2^31/4096) of the plain value.
    const bytes1 = Buffer.concat(uploads.get(1) ?? []);
    const masked1 = new Uint32Array(bytes1.buffer, bytes1.byteOffset, bytes1.length / 4);
    expect(masked1.length).toBe(got1.length);
    const plain1 = dequantize(exact1.quantized[0], 4096);
    expect(dequantize(masked1, 4096).every((v, i) => Math.abs(v - plain1[i]) > 1)).toBe(true);
    // Everyone delivered, so site-1 revealed only self-mask shares (of all three sites).
    const reply1 = secaggRevealReplySchema.parse(reveals[0]);
    expect('shares' in reply1 && reply1.shares.map((s) => `${s.siteId}:${s.kind}`)).toEqual([
      'site-1:self',
      'site-2:self',
      'site-3:self',
    ]);
    // A lying coordinator now claims site-3 dropped, to get its masking key as well: refused, nothing revealed.
    const lie1 = await siteSocket(coordinator, 'site-1')
      .timeout(5000)
      .emitWithAck('secagg:reveal', { round: 1, survivors: ['site-1', 'site-2'], dropped: ['site-3'] });
    expect(lie1).toEqual({ round: 1, refused: 'contradiction' });

    dropSite3 = true;
    const before2 = coordinator.globalModel;
    const expected2 = await plainFedAvg(
      before2,
      data.sites.slice(0, 2).map((s) => trainerFor(s)),
      2,
      2,
    );
    const exact2 = await fixedPointFedAvg(
      before2,
      data.sites.slice(0, 2).map((s) => trainerFor(s)),
      2,
      2,
      4096,
    );
    const r2 = await coordinator.runRound();
    expect(r2.outcome).toBe('aggregated');
    expect(r2.sites.sort()).toEqual(['site-1', 'site-2']);
    const got2 = flatModel(coordinator);
    expect(got2).toEqual(exact2.model);
    for (let i = 0; i < got2.length; i++) expect(Math.abs(got2[i] - expected2[i])).toBeLessThan(2e-3);
    // site-3 dropped: site-1 revealed the share of its masking key, and self-mask shares of the survivors.
    const reply2 = secaggRevealReplySchema.parse(reveals[2]);
    expect('shares' in reply2 && reply2.shares.map((s) => `${s.siteId}:${s.kind}`).sort()).toEqual([
      'site-1:self',
      'site-2:self',
      'site-3:pairwise',
    ]);
    // The attack the self masks exist for: having site-3's masking key, ask for its self-mask share too.
    const lie2 = await siteSocket(coordinator, 'site-1')
      .timeout(5000)
      .emitWithAck('secagg:reveal', { round: 2, survivors: ['site-1', 'site-2', 'site-3'], dropped: [] });
    expect(lie2).toEqual({ round: 2, refused: 'contradiction' });
    // Four answers left site-1: two honest reveals and two refusals that carry no shares.
    expect(reveals.length).toBe(4);
    expect(reveals[1]).toEqual({ round: 1, refused: 'contradiction' });
    expect(reveals[3]).toEqual({ round: 2, refused: 'contradiction' });

    const audit = readFileSync(join(dir.path, 'audit.jsonl'), 'utf8');
    expect(audit).toMatch(/"event":"secagg_recovered","round":2,"dropped":\["site-3"\]/);
  });

  it('needs t survivors to unmask, and refuses a threshold above the participants', async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const data = makeSiteData(3, 60);
    const ids = data.sites.map((s) => s.id);
    // t = 3 of 3: any dropout leaves too few survivors to unmask, and the round fails cleanly.
    const coordinator = newCoordinator(dir.path, ids, {
      secureAggregation: true,
      secaggThreshold: 3,
      minSites: 2,
      timeoutMs: 2500,
    });
    const url = await coordinator.start();
    cleanups.push(() => coordinator.close());
    let dropSite3 = false;
    const agents = data.sites.map((site) => {
      const inner = trainerFor(site);
      return newAgent(url, site, {
        trainer: {
          train: (g, p, s) => (site.id === 'site-3' && dropSite3 ? new Promise(() => {}) : inner.train(g, p, s)),
          evaluate: (g) => inner.evaluate(g),
        },
      });
    });
    for (const a of agents) await a.start();
    cleanups.push(async () => {
      for (const a of agents) await a.stop();
    });
    expect((await coordinator.runRound()).outcome).toBe('aggregated');
    dropSite3 = true;
    const before = coordinator.globalModel;
    const r2 = await coordinator.runRound();
    expect(r2.outcome).toBe('failed');
    expect(r2.reason).toMatch(/2 survivor\(s\) but the threshold is 3/);
    expect(coordinator.globalModel).toEqual(before);

    const dir2 = tempDir();
    cleanups.push(dir2.remove);
    const strict = newCoordinator(dir2.path, ids.slice(0, 2), {
      secureAggregation: true,
      secaggThreshold: 3,
      timeoutMs: 5000,
    });
    const url2 = await strict.start();
    cleanups.push(() => strict.close());
    const pair = data.sites.slice(0, 2).map((site) => newAgent(url2, site));
    for (const a of pair) await a.start();
    cleanups.push(async () => {
      for (const a of pair) await a.stop();
    });
    const r = await strict.runRound();
    expect(r.outcome).toBe('failed');
    expect(r.reason).toMatch(/threshold must be an integer in 2..2 \(the participants\), got 3/);
  });

  it('leaves out a site that dies between publishing its key and sharing its secrets', async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const data = makeSiteData(3, 60);
    const ids = data.sites.map((s) => s.id);
    const coordinator = newCoordinator(dir.path, ids, {
      secureAggregation: true,
      secaggScale: 4096,
      minSites: 2,
      timeoutMs: 3000,
    });
    const url = await coordinator.start();
    cleanups.push(() => coordinator.close());
    type ClientSocket = Parameters<NonNullable<SiteAgentOptions['onSocket']>>[0];
    let socket3: ClientSocket | undefined;
    let agent3: SiteAgent | undefined;
    const agents = data.sites.map((site) =>
      newAgent(
        url,
        site,
        site.id === 'site-3'
          ? {
              onSocket: (socket) => {
                socket3 = socket;
              },
              // site-3 publishes its key, then never handles the peer list and goes away.
              onSend: (event: SiteEvent) => {
                if (event !== 'secagg:key') return;
                socket3!.off('secagg:peers');
                setTimeout(() => void agent3!.stop(), 50);
              },
            }
          : {},
      ),
    );
    agent3 = agents[2];
    for (const a of agents) await a.start();
    cleanups.push(async () => {
      for (const a of agents) await a.stop();
    });
    const expected = await fixedPointFedAvg(
      coordinator.globalModel,
      data.sites.slice(0, 2).map((s) => trainerFor(s)),
      1,
      1,
      4096,
    );
    const r = await coordinator.runRound();
    expect(r.outcome).toBe('aggregated');
    expect(r.sites.sort()).toEqual(['site-1', 'site-2']);
    expect(flatModel(coordinator)).toEqual(expected.model);
    const audit = readFileSync(join(dir.path, 'audit.jsonl'), 'utf8');
    expect(audit).toMatch(
      /"event":"secagg_shares_relayed","round":1,"members":\["site-1","site-2"\],"left":\["site-3"\]/,
    );
  });

  it('sites whose connection blips mid-training or mid-upload reconnect and finish the round', async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const wide = { ...MODEL, hidden: 64 }; // each masked update spans several 1 KiB chunks
    const data = makeSiteData(3, 60);
    const ids = data.sites.map((s) => s.id);
    const coordinator = newCoordinator(
      dir.path,
      ids,
      { secureAggregation: true, secaggScale: 4096, chunkBytes: 1024, timeoutMs: 15_000 },
      wide,
    );
    const url = await coordinator.start();
    cleanups.push(() => coordinator.close());
    type ClientSocket = Parameters<NonNullable<SiteAgentOptions['onSocket']>>[0];
    let socket2: ClientSocket | undefined;
    let socket3: ClientSocket | undefined;
    const uploads: Buffer[] = [];
    let blipped = false;
    let blipped3 = false;
    const agents = data.sites.map((site) =>
      newAgent(url, site, {
        trainer: trainerFor(site, wide),
        ...(site.id === 'site-2'
          ? {
              onSocket: (socket: ClientSocket) => {
                socket2 = socket;
              },
              onSend: (event: SiteEvent, payload: unknown) => {
                if (event === 'update:begin') uploads.push(Buffer.from((payload as { sha256: string }).sha256));
                // After the first chunk, the transport drops; socket.io reconnects by itself.
                if (event === 'update:chunk' && !blipped) {
                  blipped = true;
                  setImmediate(() => socket2!.io.engine.close());
                }
              },
            }
          : {}),
        ...(site.id === 'site-3'
          ? {
              // Once the relayed shares are in (site-3 is mid-training or waiting for them), the transport
              // drops: the round is redone on reconnect with the same, still unused, session.
              onSocket: (socket: ClientSocket) => {
                socket3 = socket;
                socket.on('secagg:shares', () => {
                  if (blipped3) return;
                  blipped3 = true;
                  setImmediate(() => socket3!.io.engine.close());
                });
              },
            }
          : {}),
      }),
    );
    for (const a of agents) await a.start();
    cleanups.push(async () => {
      for (const a of agents) await a.stop();
    });
    const expected = await fixedPointFedAvg(
      coordinator.globalModel,
      data.sites.map((s) => trainerFor(s, wide)),
      1,
      1,
      4096,
    );
    const r = await coordinator.runRound();
    expect(blipped && blipped3).toBe(true);
    expect(r.outcome).toBe('aggregated');
    expect(r.sites.sort()).toEqual(ids);
    expect(flatModel(coordinator)).toEqual(expected.model);
    // Two uploads of the very same masked bytes (same sha256): the masks were not reused for other data.
    expect(uploads.length).toBe(2);
    expect(uploads[1].equals(uploads[0])).toBe(true);
  });
});
