/**
 * Entry point of one site process (used by `cxr fed simulate`): `site-process <site.json> [rounds]`. Runs the
 * agent until SIGTERM/SIGINT, or, given `rounds`, until that many rounds it submitted to have closed (then
 * exits 0); reports `ready` (and errors) to a parent over IPC when there is one. Exit 3: it could not start
 * (a refusal, or an unreachable coordinator after the configured start attempts), the reason on stderr.
 */
import { readFile } from 'node:fs/promises';
import { parseConfig } from '@fedcxr/core';
import { untilRoundsFinished } from './site-agent.js';
import { siteAgentFromConfig, siteConfigSchema } from './site-config.js';

async function main(): Promise<void> {
  const path = process.argv[2];
  if (!path) throw new Error('usage: site-process <site config>');
  const text = await readFile(path, 'utf8');
  const config = parseConfig(siteConfigSchema, JSON.parse(text), path);
  const agent = await siteAgentFromConfig(config, path, (m) => process.stderr.write(`${m}\n`));
  agent.on('submitted', (round: number) => process.send?.({ type: 'submitted', round }));
  agent.on('training', (round: number) => process.send?.({ type: 'training', round }));
  agent.on('round-closed', (closed: { round: number; outcome: string }) =>
    process.send?.({ type: 'round-closed', round: closed.round, outcome: closed.outcome }),
  );
  const rounds = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
  if (rounds !== undefined && !(Number.isInteger(rounds) && rounds > 0))
    throw new Error(`rounds must be a positive integer, got ${process.argv[3]}`);
  const finished = rounds === undefined ? undefined : untilRoundsFinished(agent, rounds);
  await agent.start();
  process.send?.({ type: 'ready', siteId: config.siteId });
  void finished?.done.then(async () => {
    process.stderr.write(`${config.siteId}: ${finished.finished.length} round(s) finished, exiting\n`);
    await agent.stop();
    process.exit(0);
  });
  const stop = () => void agent.stop().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.once('disconnect', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`site: ${(error as Error).message}\n`);
  process.send?.({ type: 'error', message: (error as Error).message });
  process.exit(3);
});
