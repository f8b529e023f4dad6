/** Worker thread of convertBatch: converts one job per message and answers with the result or the failure. */
import { parentPort, workerData } from 'node:worker_threads';
import { FedcxrError } from '@fedcxr/base';
import { type ConvertJob, type ConvertOptions, convertOne } from './convert.js';
import { thrownMessage } from './errors.js';

const { options } = workerData as { options: ConvertOptions };

parentPort?.on('message', async ({ index, job }: { index: number; job: ConvertJob }) => {
  try {
    parentPort?.postMessage({ index, ok: true, result: await convertOne(job, options) });
  } catch (thrown) {
    const error =
      thrown instanceof FedcxrError
        ? { code: thrown.code, message: thrown.message }
        : { code: 'internal', message: `${job.file}: ${thrownMessage(thrown)}` };
    parentPort?.postMessage({ index, ok: false, failure: { file: job.file, error } });
  }
});
