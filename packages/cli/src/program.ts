import { Command } from 'commander';
import { commandGroups } from './commands/index.js';
import { VERSION } from './index.js';

/** Builds the `cxr` program with every implemented command group. */
export function buildProgram(): Command {
  const program = new Command('cxr')
    .description(
      'fedcxr: chest X-ray disease detection with Faster R-CNN, from DICOM to boxes, metrics and heat maps, trained across hospitals by federated learning',
    )
    .version(VERSION)
    .showHelpAfterError()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })
    .exitOverride((error) => {
      // commander's own usage errors (unknown option, missing argument) exit 2; --help/--version exit 0.
      process.exit(error.exitCode === 0 ? 0 : 2);
    });
  for (const register of commandGroups) register(program);
  return program;
}
