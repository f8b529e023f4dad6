/**
 * Runs `cxr` in-process for tests: captures what the command writes to stdout/stderr and its exit code,
 * exactly as the binary would produce them (same program, same framework).
 */
import { buildProgram } from './program.js';

export interface CliRun {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** stdout parsed as JSON (for --json runs). */
  json<T = unknown>(): T;
}

export async function runCli(args: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const realOut = process.stdout.write.bind(process.stdout);
  const realErr = process.stderr.write.bind(process.stderr);
  const realExit = process.exit;
  const previousExitCode = process.exitCode;
  process.exitCode = 0;
  let exitCode: number | undefined;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stderr.write;
  process.exit = ((code?: number) => {
    exitCode = code ?? 0;
    throw new CliExit();
  }) as typeof process.exit;
  try {
    await buildProgram().parseAsync(['node', 'cxr', ...args]);
  } catch (error) {
    if (!(error instanceof CliExit)) throw error;
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
    process.exit = realExit;
  }
  const code = exitCode ?? Number(process.exitCode ?? 0);
  process.exitCode = previousExitCode;
  const stdout = out.join('');
  return { stdout, stderr: err.join(''), exitCode: code, json: <T>() => JSON.parse(stdout) as T };
}

class CliExit extends Error {}
