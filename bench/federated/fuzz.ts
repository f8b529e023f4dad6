/**
 * Fuzzes a real coordinator process on loopback (see apps/coordinator/src/fuzz.ts): raw HTTP request lines,
 * headers and bodies; raw engine.io/socket.io frames; socket.io events from an authenticated site.
 *
 *   node --experimental-transform-types --no-warnings --import ./bench/register.mjs \
 *     bench/federated/fuzz.ts [inputs=10000] [seed=19]
 *
 * Prints a JSON report (inputs by kind and outcome, exits, hangs, the coordinator's peak RSS); exits 1 on any
 * exit or hang of the coordinator.
 */
import { fuzzCoordinator } from '../../apps/coordinator/src/fuzz.js';

const inputs = Number(process.argv[2] ?? 10_000);
const seed = Number(process.argv[3] ?? 19);
const report = await fuzzCoordinator({ inputs, seed, log: (m) => process.stderr.write(`${m}\n`) });
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
process.exit(report.exits === 0 && report.hangs === 0 && report.finalUpdateAccepted ? 0 : 1);
