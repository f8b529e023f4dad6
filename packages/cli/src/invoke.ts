/**
 * Runs a `cxr` command in-process and captures what it prints: the same program and framework as the
 * binary. `cxr demo` chains commands this way (each stage is the real command), and tests use it too.
 */
import { buildProgram } from './program.js';

export interface CommandRun {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** stdout parsed as JSON (for --json runs). */
  json<T = unknown>(): T;
}

export interface InvokeOptions {
  /** Let the command's stderr (progress, logs) through to the terminal instead of capturing it. */
  passStderr?: boolean;
}

class CommandExit extends Error {}

export async function invokeCommand(args: string[], options: InvokeOptions = {}): Promise<CommandRun> {
  const out: string[] = [];
  const err: string[] = [];
  const realOut = process.stdout.write.bind(process.stdout);
  const realErr = process.stderr.write.bind(process.stderr);
  const realExit = process.exit;
  const previousExitCode = process.exitCode;
  process.exitCode = 0;
  let exitCode: number | undefined;
  const capture =
    (sink: string[]) =>
    (chunk: string | Uint8Array): boolean => {
      sink.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    };
  process.stdout.write = capture(out) as typeof process.stdout.write;
  if (!options.passStderr) process.stderr.write = capture(err) as typeof process.stderr.write;
  process.exit = ((code?: number) => {
    exitCode = code ?? 0;
    throw new CommandExit();
  }) as typeof process.exit;
  try {
    await buildProgram().parseAsync(['node', 'cxr', ...args]);
  } catch (error) {
    if (!(error instanceof CommandExit)) throw error;
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
