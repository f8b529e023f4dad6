/** For tests: run `cxr` in-process, capturing stdout, stderr and the exit code. */
import { type CommandRun, invokeCommand } from './invoke.js';

export type CliRun = CommandRun;

export function runCli(args: string[]): Promise<CliRun> {
  return invokeCommand(args);
}
