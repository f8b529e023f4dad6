/** Worker thread of importDataset: converts one item per message, answers with the result or the failure. */
import { parentPort } from 'node:worker_threads';
import { type ConvertJob, type ConvertResult, convertItem } from './import.js';

parentPort?.on('message', async (job: ConvertJob) => {
  let result: ConvertResult;
  try {
    result = { ok: true, converted: await convertItem(job.item, job.settings) };
  } catch (error) {
    result = { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  parentPort?.postMessage(result);
});
