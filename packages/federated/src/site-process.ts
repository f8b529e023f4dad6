/**
 * Entry point of one site process (used by `cxr fed simulate`): `site-process <site.json>`. Runs the
 * agent until SIGTERM/SIGINT; reports `ready` (and errors) to a parent over IPC when there is one.
 */
import { readFile } from 'node:fs/promises';
import { parseConfig } from '@fedcxr/core';
import { siteAgentFromConfig, siteConfigSchema } from './site-config.js';

async function main(): Promise<void> {
  const path = process.argv[2];
  if (!path) throw new Error('usage: site-process <site config>');
  const text = await readFile(path, 'utf8');
  const config = parseConfig(siteConfigSchema, JSON.parse(text), path);
  const agent = await siteAgentFromConfig(config, path, (m) => process.stderr.write(`${m}\n`));
  agent.on('submitted', (round: number) => process.send?.({ type: 'submitted', round }));
  agent.on('training', (round: number) => process.send?.({ type: 'training', round }));
  await agent.start();
  process.send?.({ type: 'ready', siteId: config.siteId });
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
