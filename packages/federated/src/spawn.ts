/**
 * Starts site agents as child processes. From a build it runs dist/site-process.js; from the sources (tests,
 * a clone without a build) it runs site-process.ts on Node 24 with type stripping and a resolver hook.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FedcxrError } from '@fedcxr/core';

export interface SiteProcess {
  child: ChildProcess;
  siteId: string;
  /** Resolves once the agent is connected and authenticated. */
  ready: Promise<void>;
  stderr(): string;
  kill(signal?: NodeJS.Signals): void;
}

function entry(): { script: string; execArgv: string[] } {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    return {
      script: fileURLToPath(new URL('./site-process.ts', here)),
      execArgv: [
        '--experimental-transform-types',
        '--no-warnings',
        '--import',
        fileURLToPath(new URL('./ts-source-register.mjs', here)),
      ],
    };
  }
  const script = fileURLToPath(new URL('./site-process.js', here));
  if (!existsSync(script)) throw new FedcxrError('federated_missing_entry', `site entry point not found: ${script}`);
  return { script, execArgv: [] };
}

export function spawnSiteProcess(
  siteId: string,
  configPath: string,
  options: { readyTimeoutMs?: number; rounds?: number } = {},
): SiteProcess {
  const { script, execArgv } = entry();
  const args = options.rounds === undefined ? [configPath] : [configPath, String(options.rounds)];
  const child = fork(script, args, { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-20_000);
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new FedcxrError('site_start_timeout', `site ${siteId} did not connect in time:\n${stderr}`)),
      options.readyTimeoutMs ?? 60_000,
    );
    child.on('message', (message: { type?: string; message?: string }) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve();
      } else if (message.type === 'error') {
        clearTimeout(timer);
        reject(new FedcxrError('site_failed', `site ${siteId}: ${message.message}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new FedcxrError('site_failed', `site ${siteId} exited with ${code}:\n${stderr}`));
    });
  });
  ready.catch(() => {});
  return {
    child,
    siteId,
    ready,
    stderr: () => stderr,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
