/**
 * Soak of the federated coordinator (issue 19), on loopback: a coordinator PROCESS and 3 site PROCESSES
 * (tabular model) run `rounds` rounds; a random site is SIGKILLed mid-round now and then (and restarted), the
 * coordinator is SIGKILLed mid-round every ~10 rounds (and restarted on the same state), and a flood client
 * sends bad site tokens and bad admin requests the whole time. Reports: accepted updates lost (accepted =
 * acknowledged to the site, i.e. journaled; lost = in no aggregated round), the audit chain verified across
 * its rotations, the flood's refusals as counted by the audit, the coordinator's peak memory and the peak
 * spool bytes on disk.
 *
 *   node --experimental-transform-types --no-warnings --import ./bench/register.mjs \
 *     bench/federated/soak.ts [rounds=50] [seed=1]
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '@fedcxr/core';
import { createTabularModel, encodeModel, type SiteProcess } from '@fedcxr/federated';
import {
  type CoordinatorProcess,
  freePort,
  httpCall,
  rawSite,
  readAudit,
  siteProcess,
  sleep,
  startCoordinatorProcess,
  within,
  writeConfig,
  writeSiteFiles,
} from '../../apps/coordinator/src/attack-harness.js';
import { verifyAuditChain } from '../../apps/coordinator/src/audit.js';
import { coordinatorConfig, MODEL, makeSiteData, tempDir } from '../../apps/coordinator/src/testing.js';

const rounds = Number(process.argv[2] ?? 50);
const rng = new Rng(Number(process.argv[3] ?? 1));
const random = () => rng.next();
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);

const dir = tempDir('fedcxr-soak-');
const stateDir = join(dir.path, 'state');
const modelPath = join(dir.path, 'initial.fcxw');
writeFileSync(modelPath, encodeModel(createTabularModel(MODEL, 1)));
const data = makeSiteData(3, 120);
const ids = data.sites.map((s) => s.id);
const port = await freePort();
const configPath = writeConfig(join(dir.path, 'coordinator.json'), {
  ...coordinatorConfig(stateDir, ids, { minSites: 2, timeoutMs: 8000 }),
  port,
  initialModel: modelPath,
  audit: { maxBytes: 32 * 1024, refusalIntervalMs: 2000, maxRefusalsPerInterval: 20, tarpitMs: 200 },
});

const accepted = new Set<string>();
let coordinator: CoordinatorProcess;
let peakRssMiB = 0;
let peakSpoolBytes = 0;
const started = Date.now();

async function startCoordinator(): Promise<CoordinatorProcess> {
  const c = await startCoordinatorProcess(configPath);
  c.child.on('message', (m: { type?: string; siteId?: string; round?: number }) => {
    if (m.type === 'update-accepted') accepted.add(`${m.round}:${m.siteId}`);
  });
  return c;
}

function sample(): void {
  try {
    const status = readFileSync(`/proc/${coordinator.child.pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    if (hwm) peakRssMiB = Math.max(peakRssMiB, Number(hwm[1]) / 1024);
  } catch {}
  let bytes = 0;
  try {
    for (const round of readdirSync(join(stateDir, 'rounds'))) {
      const updates = join(stateDir, 'rounds', round, 'updates');
      try {
        for (const f of readdirSync(updates)) bytes += statSync(join(updates, f)).size;
      } catch {}
    }
  } catch {}
  peakSpoolBytes = Math.max(peakSpoolBytes, bytes);
}

coordinator = await startCoordinator();
const url = coordinator.url;
const configs = await Promise.all(
  data.sites.map((site) => writeSiteFiles(dir.path, site, url, { retry: { initialDelayMs: 100, maxDelayMs: 1000 } })),
);
const sites: SiteProcess[] = data.sites.map((site, i) => siteProcess(site.id, configs[i]));
await Promise.all(sites.map((s) => s.ready));
const sampler = setInterval(sample, 250);

// The flood: bad site tokens and bad admin tokens from one client, until the soak ends.
let flooding = true;
let floodAttempts = 0;
/** Attempts the coordinator answered with a refusal (the rest met a coordinator that was down). */
let floodRefused = 0;
const flood = (async () => {
  while (flooding) {
    floodAttempts++;
    await rawSite(url, 'site-1', { token: 'not-the-token-of-site-1' }).then(
      (s) => s.socket.disconnect(),
      (error: Error) => {
        if (/bad credentials/.test(error.message)) floodRefused++;
      },
    );
    floodAttempts++;
    await httpCall(`${url}/api/rounds`, { method: 'POST', headers: { authorization: 'Bearer nope' } }).then(
      (r) => {
        if (r.status === 401 || r.status === 429) floodRefused++;
      },
      () => {},
    );
    await sleep(5);
  }
})();

let siteKills = 0;
let coordinatorKills = 0;
let closedRounds = 0;
let failedRounds = 0;
while (closedRounds < rounds) {
  coordinator.send({ type: 'start-round' });
  const opened = await Promise.race([
    coordinator.next('round-opened', undefined, 30_000),
    coordinator.next('error', undefined, 30_000),
  ]);
  if (opened.type === 'error') {
    log(`start-round refused: ${opened.message}`);
    await sleep(200);
    continue;
  }
  const round = opened.round as number;
  const killCoordinator = closedRounds % 10 === 5;
  if (random() < 0.3) {
    const victim = Math.floor(random() * sites.length);
    await sleep(Math.floor(random() * 800));
    sites[victim].kill('SIGKILL');
    siteKills++;
    log(`round ${round}: killed ${ids[victim]}`);
    sites[victim] = siteProcess(ids[victim], configs[victim]);
  }
  if (killCoordinator) {
    await coordinator.next('update-accepted', (m) => m.round === round, 30_000).catch(() => {});
    coordinator.child.kill('SIGKILL');
    await coordinator.exited;
    coordinatorKills++;
    log(`round ${round}: killed the coordinator`);
    coordinator = await startCoordinator();
  }
  const closed = await coordinator.next('round-closed', (m) => m.round === round, 60_000);
  closedRounds++;
  if (closed.outcome !== 'aggregated') failedRounds++;
  if (closedRounds % 10 === 0) log(`${closedRounds} rounds closed (${failedRounds} failed)`);
}

flooding = false;
await within(flood, 10_000, 'flood stop').catch(() => {});
clearInterval(sampler);
sample();
for (const s of sites) s.kill('SIGTERM');
await coordinator.stop();

const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as {
  history: { round: number; outcome: string; sites: string[] }[];
};
const aggregated = new Map(state.history.filter((h) => h.outcome === 'aggregated').map((h) => [h.round, h.sites]));
const failed = new Set(state.history.filter((h) => h.outcome === 'failed').map((h) => h.round));
let lost = 0;
let inFailedRounds = 0;
for (const key of accepted) {
  const [round, siteId] = key.split(':');
  if (aggregated.get(Number(round))?.includes(siteId)) continue;
  if (failed.has(Number(round))) inFailedRounds++;
  else lost++;
}
const chain = verifyAuditChain(stateDir);
const audit = readAudit(stateDir);
const refusalLines = audit.filter((e) => ['auth_refused', 'admin_refused'].includes(e.event));
const summaries = audit.filter((e) => e.event === 'refusals_summarised');
const report = {
  rounds: closedRounds,
  aggregatedRounds: aggregated.size,
  failedRounds,
  siteKills,
  coordinatorKills,
  acceptedUpdates: accepted.size,
  lostUpdates: lost,
  acceptedInFailedRounds: inFailedRounds,
  auditUpdateLost: audit.filter((e) => e.event === 'update_lost').length,
  auditChain: { verified: true, ...chain },
  flood: {
    attempts: floodAttempts,
    refusedByCoordinator: floodRefused,
    // The open interval's summary lives in memory: a SIGKILL loses at most one interval per kill.
    countedByAudit: refusalLines.length + summaries.reduce((n, e) => n + (e.count as number), 0),
    auditLines: refusalLines.length + summaries.length,
  },
  coordinatorPeakRssMiB: Math.round(peakRssMiB),
  peakSpoolBytes,
  seconds: Math.round((Date.now() - started) / 1000),
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
dir.remove();
process.exit(lost === 0 ? 0 : 1);
