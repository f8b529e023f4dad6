/**
 * Entry point of a coordinator process: `coordinator-process <config.json>`. Used by the crash test (the
 * process is SIGKILLed mid-round) and usable as a minimal standalone coordinator. Reports `listening`
 * and each closed round to a parent over IPC when there is one.
 */
import { readFile } from 'node:fs/promises';
import { Coordinator } from './coordinator.js';

async function main(): Promise<void> {
  const path = process.argv[2];
  if (!path) throw new Error('usage: coordinator-process <config.json>');
  const coordinator = new Coordinator(JSON.parse(await readFile(path, 'utf8')), {
    log: (m) => process.stderr.write(`${m}\n`),
  });
  const url = await coordinator.start();
  coordinator.on('round-closed', (summary: { round: number; outcome: string }) =>
    process.send?.({ type: 'round-closed', round: summary.round, outcome: summary.outcome }),
  );
  coordinator.on('update-accepted', (siteId: string, round: number) =>
    process.send?.({ type: 'update-accepted', siteId, round }),
  );
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'start-round')
      void coordinator.startRound().then(
        (round) => process.send?.({ type: 'round-opened', round }),
        (error: Error) => process.send?.({ type: 'error', message: error.message }),
      );
  });
  process.send?.({
    type: 'listening',
    url,
    round: coordinator.currentRound ?? null,
    history: coordinator.history.length,
  });
  const stop = () => void coordinator.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`coordinator: ${(error as Error).message}\n`);
  process.exit(3);
});
