/**
 * The shared shape of every `cxr` command: `--json` output for scripts, meaningful exit codes, clear
 * errors without stack traces, progress bars with rate and ETA on stderr, and config files validated with
 * a schema whose errors name the field, with flags overriding the file.
 */
import { readFile } from 'node:fs/promises';
import { asFedcxrError, FedcxrError, parseConfig } from '@fedcxr/core';
import type { Command } from 'commander';
import YAML from 'yaml';
import type { z } from 'zod';

/** Exit codes: 0 ok, 1 the work ran but some inputs failed, 2 bad usage/config, 3 runtime error. */
export const ExitCode = { ok: 0, partialFailure: 1, usage: 2, failure: 3 } as const;

export interface CommandContext {
  /** Machine-readable output requested: print exactly one JSON document on stdout, nothing else. */
  json: boolean;
  /** Suppress progress bars and human chatter (also automatic when stderr is not a TTY, for bars). */
  quiet: boolean;
  /** Human-readable line on stderr (silent under --json or --quiet). */
  log(message: string): void;
}

export interface CommandOutcome {
  /** The JSON document printed under --json. */
  data: unknown;
  /** What a person reads instead (stdout). */
  human?: string;
  exitCode?: number;
}

/** Adds the options every command has. */
export function withCommonOptions(command: Command): Command {
  return command.option('--json', 'print machine-readable JSON on stdout').option('-q, --quiet', 'no progress output');
}

/**
 * Wraps a command's body: builds the context from the common options, prints the outcome (JSON or
 * human), maps errors to a one-line message (or `{error}` JSON) and an exit code.
 */
export function action<A extends unknown[]>(
  body: (ctx: CommandContext, ...args: A) => Promise<CommandOutcome>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const command = args[args.length - 1] as Command;
    const options = command.optsWithGlobals() as { json?: boolean; quiet?: boolean };
    const ctx: CommandContext = {
      json: Boolean(options.json),
      quiet: Boolean(options.quiet),
      log: (message) => {
        if (!options.json && !options.quiet) process.stderr.write(`${message}\n`);
      },
    };
    try {
      const outcome = await body(ctx, ...args);
      if (ctx.json) process.stdout.write(`${JSON.stringify(outcome.data, null, 2)}\n`);
      else if (outcome.human !== undefined) process.stdout.write(`${outcome.human}\n`);
      process.exitCode = outcome.exitCode ?? ExitCode.ok;
    } catch (thrown) {
      const error = asFedcxrError(thrown);
      const usage = error.code === 'invalid_config' || error.code === 'usage';
      if (ctx.json) process.stdout.write(`${JSON.stringify({ error: error.toJSON() }, null, 2)}\n`);
      else process.stderr.write(`cxr: ${error.message}\n`);
      if (error.code === 'internal' && process.env.CXR_DEBUG) process.stderr.write(`${String(thrown)}\n`);
      process.exitCode = usage ? ExitCode.usage : ExitCode.failure;
    }
  };
}

/** Reads a YAML or JSON config file, applies flag overrides (dotted keys), validates with the schema. */
export async function loadConfig<T extends z.ZodType>(
  schema: T,
  file: string | undefined,
  overrides: Record<string, unknown> = {},
): Promise<z.infer<T>> {
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new FedcxrError('config_unreadable', `cannot read config: ${(error as Error).message}`, { file });
    }
    try {
      raw = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
    } catch (error) {
      throw new FedcxrError(
        'invalid_config',
        `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
        { file },
      );
    }
  }
  const merged = structuredClone(raw ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    setDotted(merged, key, value);
  }
  return parseConfig(schema, merged, file ?? 'flags');
}

function setDotted(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

export interface Progress {
  /** Advance by `n` (default 1); `status` is shown after the bar (e.g. current losses). */
  tick(n?: number, status?: string): void;
  stop(): void;
}

/**
 * A progress bar on stderr: `label [=====>    ] 120/602 20.1/s ETA 0:24 status`. Redrawn at most 10×/s;
 * silent under --json/--quiet or when stderr is not a terminal (then one summary line at the end).
 */
export function createProgress(ctx: CommandContext, label: string, total: number): Progress {
  const interactive = !ctx.json && !ctx.quiet && process.stderr.isTTY === true;
  const started = performance.now();
  let done = 0;
  let lastDraw = 0;
  let lastStatus = '';
  const draw = (final: boolean) => {
    const elapsed = (performance.now() - started) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 && total > done ? (total - done) / rate : 0;
    const width = 24;
    const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : width;
    const bar = `${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}`;
    const line = `${label} [${bar}] ${done}/${total} ${rate.toFixed(1)}/s ETA ${formatDuration(eta)} ${lastStatus}`;
    process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1)}\x1b[K${final ? '\n' : ''}`);
  };
  return {
    tick(n = 1, status) {
      done += n;
      if (status !== undefined) lastStatus = status;
      if (!interactive) return;
      const now = performance.now();
      if (now - lastDraw > 100 || done >= total) {
        lastDraw = now;
        draw(false);
      }
    },
    stop() {
      if (interactive) draw(true);
      else if (!ctx.json && !ctx.quiet) {
        const seconds = (performance.now() - started) / 1000;
        process.stderr.write(`${label}: ${done}/${total} in ${formatDuration(seconds)} ${lastStatus}\n`);
      }
    },
  };
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}
