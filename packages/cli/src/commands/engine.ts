/**
 * `cxr engine build`: builds the torch backend's bridge (packages/core/native) against the libtorch found here
 * ($LIBTORCH, a Python torch, Debian libtorch-dev), as `npm ci` does when it can; says what is missing when it
 * cannot. `cxr doctor` then reports the torch backend.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { FedcxrError, nativeDirectory } from '@fedcxr/core';
import type { Command } from 'commander';
import { action, withCommonOptions } from '../framework.js';

interface BuildResult {
  built: boolean;
  upToDate?: boolean;
  reason?: string;
  origin?: string;
  version?: string;
  seconds?: number;
}

export function registerEngineCommands(program: Command): void {
  const engine = program.command('engine').description('the tensor engine: build the torch backend');
  withCommonOptions(
    engine
      .command('build')
      .description('build the torch backend bridge against the libtorch on this machine (needs a C++ compiler)')
      .option('--force', 'rebuild even if the bridge is up to date'),
  ).action(
    action(async (ctx, flags: { force?: boolean }) => {
      const native = nativeDirectory();
      if (!native)
        throw new FedcxrError('runtime', 'the torch bridge sources (packages/core/native) are not installed');
      ctx.log('building the torch bridge (a minute or two)…');
      const run = spawnSync(
        process.execPath,
        [path.join(native, 'build.mjs'), '--json', ...(flags.force ? ['--force'] : [])],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let result: BuildResult;
      try {
        result = JSON.parse(run.stdout) as BuildResult;
      } catch {
        throw new FedcxrError(
          'runtime',
          `the torch bridge build printed no result: ${run.stderr.trim().split('\n').pop()}`,
        );
      }
      if (!result.built) throw new FedcxrError('runtime', `the torch bridge was not built: ${result.reason}`);
      return {
        data: result,
        human: result.upToDate
          ? `torch bridge up to date (libtorch ${result.version}, ${result.origin})`
          : `torch bridge built in ${result.seconds} s against libtorch ${result.version} (${result.origin})`,
      };
    }),
  );
}
