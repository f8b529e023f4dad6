/**
 * The coordinator fuzzer (fuzz.ts) at a CI size: FED_FUZZ_INPUTS inputs (default 600; the full run is
 * `bench/federated/fuzz.ts`, 10,000+), seeded (FED_FUZZ_SEED): no exit, no hang, still accepting updates.
 */
import { describe, expect, it } from 'vitest';
import { fuzzCoordinator } from './fuzz.js';

describe('fuzzing the coordinator process (HTTP, engine.io/socket.io frames, site events)', () => {
  it('survives every input: 0 exits, 0 hangs, and a good update is still accepted', async () => {
    const inputs = Number(process.env.FED_FUZZ_INPUTS ?? 600);
    const report = await fuzzCoordinator({ inputs, seed: Number(process.env.FED_FUZZ_SEED ?? 19) });
    expect(report.inputs).toBeGreaterThanOrEqual(inputs);
    expect(report.exits).toBe(0);
    expect(report.hangs).toBe(0);
    expect(report.finalUpdateAccepted).toBe(true);
    // Each kind of input was exercised.
    expect(Object.keys(report.byKind).sort()).toEqual(['engine.io/socket.io frames', 'http', 'site events']);
  }, 300_000);
});
