/**
 * `cxr dataset import --dicomweb <base-url> [--study UID] [--modality CR,DX] [--since YYYYMMDD] --out <dir>`:
 * pulls the matching images of a PACS (QIDO-RS to find them, WADO-RS to retrieve them as stored) into
 * `<out>/dicom/` as Part 10 files, so that the normal importers (with the site's labels) can run on them.
 * Non-image objects (reports, documents) and series of other modalities are skipped and listed; a rerun
 * skips what `<out>/dicomweb.json` says is already there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FedcxrError, writeFileAtomic, writeJsonAtomic } from '@fedcxr/core';
import { jsonString, DICOM_JSON_TAGS as TAGS } from '@fedcxr/dicom';
import type { Command } from 'commander';
import { type CommandContext, type CommandOutcome, createProgress, ExitCode } from '../framework.js';
import {
  clientFromFlags,
  credentialsGiven,
  type DicomwebFlags,
  explainDicomwebError,
  selectionFromFlags,
  withDicomwebOptions,
} from './connect.js';
import { discover, type FailedItem, type SkippedInstance } from './discover.js';

export interface PullFlags extends DicomwebFlags {
  out: string;
  nameBy?: string;
}

export interface PulledInstance {
  /** Path under --out. */
  file: string;
  study: string;
  series: string;
  instance: string;
  patient_id: string | null;
  modality: string | null;
}

export const PULL_MANIFEST = 'dicomweb.json';

/** Adds --dicomweb (with its selection, auth and TLS options) and --name-by to `dataset import`. */
export function withDicomwebPullOptions(command: Command): Command {
  return withDicomwebOptions(command, 'pull the images into --out/dicom/ (instead of importing <src>)').option(
    '--name-by <sop|patient>',
    'DICOMweb: name pulled files <SOPInstanceUID>.dcm or <PatientID>.dcm (as --format rsna expects)',
    'sop',
  );
}

const safeName = (text: string) => text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120) || 'unnamed';

export async function pullFromDicomweb(ctx: CommandContext, flags: PullFlags, src?: string): Promise<CommandOutcome> {
  if (src !== undefined) throw new FedcxrError('usage', `give either <src> or --dicomweb, not both (got "${src}")`);
  if ((flags as { format?: string }).format !== undefined) {
    throw new FedcxrError(
      'usage',
      '--dicomweb only pulls the images (the PACS has no labels): run dataset import --format on --out afterwards',
    );
  }
  const nameBy = flags.nameBy ?? 'sop';
  if (nameBy !== 'sop' && nameBy !== 'patient') {
    throw new FedcxrError('usage', `--name-by must be sop or patient, got "${nameBy}"`);
  }
  const selection = selectionFromFlags(flags);
  const client = clientFromFlags(flags);
  const manifestFile = join(flags.out, PULL_MANIFEST);
  const previous = new Map<string, PulledInstance>();
  if (existsSync(manifestFile)) {
    try {
      const saved = JSON.parse(readFileSync(manifestFile, 'utf8')) as { pulled?: PulledInstance[] };
      for (const entry of saved.pulled ?? []) previous.set(entry.instance, entry);
    } catch (error) {
      throw new FedcxrError('invalid_config', `cannot read the previous pull's manifest: ${(error as Error).message}`, {
        file: manifestFile,
      });
    }
  }
  try {
    const found = await discover(client, selection, { findDone: false });
    const skipped: SkippedInstance[] = [...found.skipped];
    const failed: FailedItem[] = [...found.failed];
    const pulled: PulledInstance[] = [];
    const kept: PulledInstance[] = [];
    const taken = new Set([...previous.values()].map((p) => p.file));
    const todo = found.items.filter((item) => {
      const before = previous.get(item.instance);
      if (before && existsSync(join(flags.out, before.file))) {
        kept.push(before);
        skipped.push({
          url: item.url,
          study: item.study.uid,
          series: item.series,
          instance: item.instance,
          reason: 'already_pulled',
          message: `already in ${before.file}`,
        });
        return false;
      }
      return true;
    });
    ctx.log(
      `${client.baseUrl}: ${found.studies.length} stud${found.studies.length === 1 ? 'y' : 'ies'}, ${todo.length} image(s) to pull${kept.length ? `, ${kept.length} already pulled` : ''}`,
    );
    for (const failure of found.failed) ctx.log(`failed (${failure.stage}) ${failure.file}: ${failure.error.message}`);
    const saveManifest = () =>
      writeJsonAtomic(manifestFile, {
        source: client.baseUrl,
        pulled: [...kept, ...pulled],
        skipped,
        failed,
      });
    const progress = createProgress(ctx, 'pulling', todo.length);
    try {
      for (const item of todo) {
        try {
          const bytes = await client.retrieveInstance(item.study.uid, item.series, item.instance);
          const patientId =
            jsonString(item.attributes, TAGS.PatientID) ?? jsonString(item.study.attributes, TAGS.PatientID) ?? null;
          const stem = safeName(nameBy === 'patient' && patientId ? patientId : item.instance);
          let file = join('dicom', `${stem}.dcm`);
          for (let n = 2; taken.has(file); n++) file = join('dicom', `${stem}_${n}.dcm`);
          taken.add(file);
          await writeFileAtomic(join(flags.out, file), bytes);
          pulled.push({
            file,
            study: item.study.uid,
            series: item.series,
            instance: item.instance,
            patient_id: patientId,
            modality: jsonString(item.attributes, TAGS.Modality) ?? null,
          });
          if (pulled.length % 25 === 0) await saveManifest();
        } catch (thrown) {
          const error = explainDicomwebError(thrown, credentialsGiven(flags)) as Error & { code?: string };
          failed.push({
            file: item.url,
            study: item.study.uid,
            series: item.series,
            instance: item.instance,
            stage: 'retrieve',
            error: { code: error.code ?? 'retrieve_failed', message: error.message },
          });
          ctx.log(`failed (retrieve) ${item.url}: ${error.message}`);
        }
        progress.tick(1, failed.length ? `${failed.length} failed` : '');
      }
    } finally {
      progress.stop();
    }
    await saveManifest();
    const where = relative(process.cwd(), join(flags.out, 'dicom')) || '.';
    return {
      data: { source: client.baseUrl, studies: found.studies.length, out: flags.out, pulled, kept, skipped, failed },
      human: [
        `pulled ${pulled.length} image(s) into ${where}${kept.length ? ` (${kept.length} already there)` : ''}`,
        `skipped: ${skipped.length - kept.length}; failed: ${failed.length}; list: ${join(flags.out, PULL_MANIFEST)}`,
        `next: cxr dataset import ${flags.out} --format <format> --out <dataset> (with the labels beside dicom/)`,
      ].join('\n'),
      exitCode: failed.length > 0 ? ExitCode.partialFailure : ExitCode.ok,
    };
  } catch (thrown) {
    throw explainDicomwebError(thrown, credentialsGiven(flags));
  } finally {
    client.close();
  }
}
