/**
 * `cxr fed …`: federated training. `certs` (development PKI), `coordinator --config`, `site --config`,
 * `round start` and `status` (admin API), `simulate` (coordinator + N site processes on loopback).
 * Library logic lives in @fedcxr/federated and @fedcxr/coordinator.
 */
import { readFile } from 'node:fs/promises';
import {
  Coordinator,
  type CoordinatorConfig,
  coordinatorConfigSchema,
  coordinatorRequest,
  renderSimulationReport,
  simulate,
  simulateDetector,
  strategies,
} from '@fedcxr/coordinator';
import { type BackendChoice, backendNames, FedcxrError, trainConfigSchema, writeFileAtomic } from '@fedcxr/core';
import { generateDevCertificates, siteAgentFromConfig, siteConfigSchema, untilRoundsFinished } from '@fedcxr/federated';
import type { Command } from 'commander';
import { action, type CommandContext, loadConfig, withCommonOptions } from '../framework.js';

/** Resolves when the process is asked to stop (SIGINT/SIGTERM) or `until` settles. */
function untilStopped(until?: Promise<unknown>): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: string) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    until?.then(
      () => onSignal('done'),
      () => onSignal('done'),
    );
  });
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new FedcxrError('usage', `${name} must be a positive integer, got "${value}"`);
  return n;
}

async function readCa(path: string | undefined): Promise<string | undefined> {
  if (!path) return undefined;
  return readFile(path, 'utf8').catch((error: Error) => {
    throw new FedcxrError('config_unreadable', `cannot read CA: ${error.message}`, { file: path });
  });
}

export function registerFedCommands(program: Command): void {
  const fed = program.command('fed').description('federated training: coordinator, site agents, rounds, simulation');

  withCommonOptions(
    fed
      .command('certs')
      .description('make a development CA, a coordinator certificate and one client certificate per site')
      .requiredOption('--out <dir>', 'output directory')
      .option('--host <name...>', 'DNS names/IPs of the coordinator', ['localhost', '127.0.0.1', '::1'])
      .option('--site <id...>', 'site ids to issue client certificates for', [])
      .option('--days <n>', 'validity in days', '365'),
  ).action(
    action(async (_ctx, flags: { out: string; host: string[]; site: string[]; days: string }) => {
      const files = await generateDevCertificates({
        outDir: flags.out,
        hosts: flags.host,
        sites: flags.site,
        days: positiveInt('--days', flags.days, 365),
      });
      return {
        data: files,
        human: [
          `CA           ${files.ca}`,
          `server       ${files.serverCert} (key ${files.serverKey})`,
          ...files.sites.map((s) => `site ${s.id.padEnd(8)}${s.cert}`),
        ].join('\n'),
      };
    }),
  );

  withCommonOptions(
    fed
      .command('coordinator')
      .description('run the coordinator (dashboard at its URL) until Ctrl-C')
      .requiredOption('--config <file>', 'coordinator.yaml')
      .option('--port <n>', 'override the port')
      .option('--exit-when-done', 'exit once the configured schedule has run its rounds'),
  ).action(
    action(async (ctx, flags: { config: string; port?: string; exitWhenDone?: boolean }) => {
      const config: CoordinatorConfig = await loadConfig(coordinatorConfigSchema, flags.config, {
        port: flags.port === undefined ? undefined : Number(flags.port),
      });
      const coordinator = new Coordinator(config, { log: ctx.log });
      const url = await coordinator.start();
      ctx.log(`coordinator on ${url} (dashboard: ${url}/)`);
      const done =
        flags.exitWhenDone && config.schedule
          ? new Promise((resolve) => coordinator.once('schedule-done', resolve))
          : undefined;
      coordinator.on('round-closed', (s: { round: number; outcome: string; train: Record<string, number> }) =>
        ctx.log(`round ${s.round} ${s.outcome} ${JSON.stringify(s.train)}`),
      );
      const why = await untilStopped(done);
      await coordinator.close();
      return {
        data: { url, stopped: why, modelHash: coordinator.modelHash, history: coordinator.history },
        human: `coordinator stopped (${why})`,
      };
    }),
  );

  withCommonOptions(
    fed
      .command('site')
      .description('run a site agent until Ctrl-C: it trains on local data when the coordinator opens rounds')
      .requiredOption('--config <file>', 'site.yaml')
      .option('--rounds <n>', 'exit once this many rounds it submitted to have closed (unmasking included)'),
  ).action(
    action(async (ctx, flags: { config: string; rounds?: string }) => {
      const config = await loadConfig(siteConfigSchema, flags.config);
      const agent = await siteAgentFromConfig(config, flags.config, ctx.log);
      const limit = flags.rounds === undefined ? undefined : positiveInt('--rounds', flags.rounds, 1);
      // A site leaves only after the coordinator closed its last round: secure aggregation needs it to unmask.
      const rounds = untilRoundsFinished(agent, limit ?? Number.POSITIVE_INFINITY);
      await agent.start();
      ctx.log(`${config.siteId} connected to ${config.coordinator}`);
      const why = await untilStopped(limit === undefined ? undefined : rounds.done);
      await agent.stop();
      return {
        data: { siteId: config.siteId, submitted: rounds.submitted, finished: rounds.finished, stopped: why },
        human: `${config.siteId}: ${rounds.submitted.length} update(s) submitted, ${rounds.finished.length} round(s) finished`,
      };
    }),
  );

  const adminOptions = (command: Command) =>
    withCommonOptions(
      command
        .requiredOption('--coordinator <url>', 'coordinator URL')
        .option('--admin-token <token>', 'admin token (default: $FEDCXR_ADMIN_TOKEN)')
        .option('--ca <pem>', 'CA certificate for https'),
    );
  const adminToken = (flags: { adminToken?: string }) => {
    const token = flags.adminToken ?? process.env.FEDCXR_ADMIN_TOKEN;
    if (!token) throw new FedcxrError('usage', 'an admin token is required (--admin-token or FEDCXR_ADMIN_TOKEN)');
    return token;
  };

  const round = fed.command('round').description('control rounds through the admin API');
  adminOptions(round.command('start').description('open the next round now')).action(
    action(async (_ctx, flags: { coordinator: string; adminToken?: string; ca?: string }) => {
      const result = await coordinatorRequest<{ round: number }>(flags.coordinator, 'POST', '/api/rounds', {
        adminToken: adminToken(flags),
        ca: await readCa(flags.ca),
      });
      return { data: result, human: `round ${result.round} opened` };
    }),
  );

  adminOptions(
    fed
      .command('status')
      .description('sites, the open round and the per-round history')
      .option('--token <token>', 'viewer token (default: $FEDCXR_VIEWER_TOKEN, else the admin token)'),
  ).action(
    action(async (_ctx, flags: { coordinator: string; ca?: string; token?: string; adminToken?: string }) => {
      const token =
        flags.token ?? process.env.FEDCXR_VIEWER_TOKEN ?? flags.adminToken ?? process.env.FEDCXR_ADMIN_TOKEN;
      if (!token)
        throw new FedcxrError(
          'usage',
          'the status API needs a credential: --token (viewer) or --admin-token, or FEDCXR_VIEWER_TOKEN / FEDCXR_ADMIN_TOKEN',
        );
      const status = await coordinatorRequest<{
        sites: { id: string; online: boolean; examples: number; state: string }[];
        round: { number: number; open: boolean; accepted: number; participants: number };
        modelRound: number;
      }>(flags.coordinator, 'GET', '/api/status', { adminToken: token, ca: await readCa(flags.ca) });
      const lines = [
        `model round ${status.modelRound}; round ${status.round.number} ${status.round.open ? `open (${status.round.accepted}/${status.round.participants})` : 'closed'}`,
        ...status.sites.map(
          (s) =>
            `  ${s.id.padEnd(16)} ${s.online ? 'online ' : 'offline'} ${s.state.padEnd(11)} ${s.examples} examples`,
        ),
      ];
      return { data: status, human: lines.join('\n') };
    }),
  );

  withCommonOptions(
    fed
      .command('simulate')
      .description('coordinator + N site processes on loopback with patient-disjoint shards; federated vs centralized')
      .option(
        '--model <name>',
        'faster_rcnn (the detector) | tabular (a small model on 8×8 intensity grids)',
        'tabular',
      )
      .option('--sites <n>', 'number of sites', '3')
      .option(
        '--data <coco.json>',
        'COCO file (PNG images, as `cxr dataset import` writes) or "synthetic"',
        'synthetic',
      )
      .option('--split <mode>', 'patient | iid | non-iid (all patient-disjoint)', 'patient')
      .option('--rounds <n>', 'rounds', '5')
      .option('--epochs <n>', 'local epochs per round', '1')
      .option('--mu <μ>', 'FedProx proximal coefficient', '0')
      .option('--aggregation <rule>', `aggregation strategy: ${strategies.list().join(' | ')}`, 'fedavg')
      .option('--server-lr <η>', 'server learning rate: global += η · aggregate(deltas) (1 = plain FedAvg)', '1')
      .option('--encoding <enc>', 'float32 | float16 | int8', 'float32')
      .option('--lr <rate>', 'SGD learning rate (default 0.01 for faster_rcnn, 0.1 for tabular)')
      .option('--batch-size <n>', 'batch size (default 4 for faster_rcnn, 32 for tabular)')
      .option(
        '--config <train.json>',
        'faster_rcnn: a `cxr train` config whose model (backbone, size, head options, trainable layers) and recipe (batch, optimizer, schedule, augmentation) every site and the centralized baseline use; its data section is not read',
      )
      .option(
        '--init <model-dir>',
        'faster_rcnn: a checkpoint (same detector and classes) that the federation and the centralized baseline both start from, as hospitals start from a shared pretrained model',
      )
      .option('--backbone <name>', 'faster_rcnn: registered backbone', 'resnet18_fpn')
      .option('--size <px>', 'faster_rcnn: input size in pixels', '128')
      .option('--images <n>', 'faster_rcnn on synthetic data: images generated', '96')
      .option('--limit <n>', 'faster_rcnn on a COCO file: use its first N images')
      .option('--backend <name>', `faster_rcnn: tensor engine backend (${backendNames.join(' | ')} | auto)`, 'auto')
      .option('--hidden <n>', 'tabular: hidden units (0 = softmax regression)', '0')
      .option('--seed <n>', 'seed', '1')
      .option('--work-dir <dir>', 'keep state, shards and configs here')
      .option('--report <file.html>', 'write an HTML page: rounds as charts, federated against centralized as bars'),
  ).action(
    action(
      async (
        ctx: CommandContext,
        flags: {
          model: string;
          sites: string;
          data: string;
          split: string;
          rounds: string;
          epochs: string;
          mu: string;
          aggregation: string;
          serverLr: string;
          encoding: string;
          lr?: string;
          batchSize?: string;
          config?: string;
          init?: string;
          backbone: string;
          size: string;
          images: string;
          limit?: string;
          backend: string;
          hidden: string;
          seed: string;
          workDir?: string;
          report?: string;
        },
      ) => {
        if (!['tabular', 'faster_rcnn'].includes(flags.model))
          throw new FedcxrError('usage', `--model must be faster_rcnn or tabular, got "${flags.model}"`);
        if (!['patient', 'iid', 'non-iid'].includes(flags.split))
          throw new FedcxrError('usage', `--split must be patient, iid or non-iid, got "${flags.split}"`);
        if (!['float32', 'float16', 'int8'].includes(flags.encoding))
          throw new FedcxrError('usage', `--encoding must be float32, float16 or int8`);
        if (flags.backend !== 'auto' && !(backendNames as readonly string[]).includes(flags.backend))
          throw new FedcxrError('usage', `--backend must be auto or one of ${backendNames.join(', ')}`);
        const number = (name: string, value: string) => {
          const n = Number(value);
          if (!Number.isFinite(n) || n < 0)
            throw new FedcxrError('usage', `${name} must be a non-negative number, got "${value}"`);
          return n;
        };
        const positive = (name: string, value: string) => {
          const n = number(name, value);
          if (n <= 0) throw new FedcxrError('usage', `${name} must be positive, got "${value}"`);
          return n;
        };
        const mu = number('--mu', flags.mu);
        // The strategy and its options, as the coordinator will check them (registered name, its μ, …).
        const round = coordinatorConfigSchema.shape.round.safeParse({ aggregation: flags.aggregation, mu });
        if (!round.success)
          throw new FedcxrError(
            'usage',
            `--aggregation ${flags.aggregation}: ${round.error.issues.map((i) => i.message).join('; ')}`,
          );
        const common = {
          sites: positiveInt('--sites', flags.sites, 3),
          data: flags.data,
          split: flags.split as 'patient',
          rounds: positiveInt('--rounds', flags.rounds, 5),
          epochs: positiveInt('--epochs', flags.epochs, 1),
          mu,
          aggregation: flags.aggregation,
          serverLearningRate: positive('--server-lr', flags.serverLr),
          encoding: flags.encoding as 'float32',
          learningRate: flags.lr === undefined ? undefined : number('--lr', flags.lr),
          batchSize: flags.batchSize === undefined ? undefined : positiveInt('--batch-size', flags.batchSize, 1),
          seed: Math.floor(number('--seed', flags.seed)),
          workDir: flags.workDir,
          onProgress: ctx.log,
        };
        if (flags.model === 'faster_rcnn') {
          // The data come from --data: the train config's data section is not read.
          const train = flags.config ? await loadConfig(trainConfigSchema, flags.config) : undefined;
          const report = await simulateDetector({
            train,
            ...common,
            init: flags.init,
            backbone: flags.backbone,
            size: positiveInt('--size', flags.size, 128),
            images: positiveInt('--images', flags.images, 96),
            limit: flags.limit === undefined ? undefined : positiveInt('--limit', flags.limit, 1),
            backend: flags.backend as BackendChoice,
          });
          const f = report.federated;
          const c = report.centralized;
          const human = [
            `Faster R-CNN ${report.model.backbone} at ${report.model.size} px: ${report.sites.length} sites (${flags.split} split), ${report.rounds.length} rounds × ${report.totalEpochs / report.rounds.length} local epoch(s); ${report.testImages} test images`,
            ...report.sites.map(
              (s) =>
                `  ${s.id}: ${s.trainImages} train / ${s.validationImages} validation images, ${s.patients} patients${s.note ? ` (${s.note})` : ''}`,
            ),
            `initial     mAP ${report.initial.ap.toFixed(4)}  AP50 ${report.initial.ap50.toFixed(4)}  AR100 ${report.initial.ar100.toFixed(4)}  (${report.init ? `from ${report.init}` : 'random weights'}; both sides start here)`,
            `federated   mAP ${f.ap.toFixed(4)}  AP50 ${f.ap50.toFixed(4)}  AR100 ${f.ar100.toFixed(4)}  (${report.seconds.federated.toFixed(0)} s)`,
            `centralized mAP ${c.ap.toFixed(4)}  AP50 ${c.ap50.toFixed(4)}  AR100 ${c.ar100.toFixed(4)}  (${report.totalEpochs} epochs, ${report.seconds.centralized.toFixed(0)} s)`,
            report.mapRatio === null
              ? `federated / centralized mAP: ${report.ratioNote ?? 'n/a'}  (${report.seconds.total.toFixed(0)} s in all)`
              : `federated / centralized mAP: ${report.mapRatio.toFixed(4)}  (AP50 ${report.ap50Ratio === null ? 'n/a' : report.ap50Ratio.toFixed(4)}; ${report.seconds.total.toFixed(0)} s in all)`,
          ].join('\n');
          if (flags.report) await writeFileAtomic(flags.report, renderSimulationReport(report));
          return { data: report, human };
        }
        const report = await simulate({
          ...common,
          learningRate: common.learningRate ?? 0.1,
          batchSize: common.batchSize ?? 32,
          hidden: Math.floor(number('--hidden', flags.hidden)),
        });
        const human = [
          `${report.sites.length} sites (${flags.split} split), ${report.rounds.length} rounds × ${report.totalEpochs / report.rounds.length} local epoch(s); test rows ${report.testRows}`,
          ...report.sites.map(
            (s) => `  ${s.id}: ${s.trainRows} train / ${s.validationRows} validation rows, ${s.patients} patients`,
          ),
          `federated   accuracy ${report.federated.accuracy.toFixed(4)}  loss ${report.federated.loss.toFixed(4)}`,
          `centralized accuracy ${report.centralized.accuracy.toFixed(4)}  loss ${report.centralized.loss.toFixed(4)} (${report.totalEpochs} epochs)`,
          `federated / centralized accuracy: ${report.accuracyRatio.toFixed(4)}  (${report.seconds.toFixed(1)} s)`,
        ].join('\n');
        if (flags.report) await writeFileAtomic(flags.report, renderSimulationReport(report));
        return { data: report, human };
      },
    ),
  );
}
