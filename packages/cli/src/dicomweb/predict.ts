/**
 * The PACS side of `cxr predict --dicomweb`: what to predict on (discover), how each image is retrieved
 * (WADO-RS) and prepared, the report's patient/study attributes (from the study's QIDO-RS record), one report
 * series per study and run, and storing each report into its study (STOW-RS).
 */
import { asFedcxrError, FedcxrError } from '@fedcxr/core';
import {
  COMPREHENSIVE_SR_SOP_CLASS,
  DicomError,
  type DicomwebClient,
  GSPS_SOP_CLASS,
  jsonString,
  newUid,
  type SrSourceImage,
  DICOM_JSON_TAGS as TAGS,
} from '@fedcxr/dicom';
import type { PredictSource } from '../commands/predict.js';
import type { CommandContext } from '../framework.js';
import { type InputPreparation, prepareInputBytes } from '../inference/input.js';
import { type DicomwebSelection, explainDicomwebError } from './connect.js';
import { discover, type FailedItem, type InstanceItem, type SkippedInstance, type StudyRecord } from './discover.js';

export interface StoredReport {
  study: string;
  /** The image the report is about. */
  instance: string;
  series: string;
  /** The report's SOP Instance UID and series. */
  report: string;
  report_series: string;
  url?: string;
  /** The presentation state's SOP Instance UID (--gsps). */
  presentation_state?: string;
}

export interface DicomwebWork {
  studies: number;
  /** Images to predict on. */
  count: number;
  sources(preparation: InputPreparation): PredictSource[];
  skipped: SkippedInstance[];
  failed: FailedItem[];
}

/** The study's patient and study attributes a report repeats (PS3.3 C.7.1.1, C.7.2.1). */
function withStudy(source: SrSourceImage, study: StudyRecord): SrSourceImage {
  const get = (tag: string) => jsonString(study.attributes, tag);
  return {
    ...source,
    patientId: source.patientId ?? get(TAGS.PatientID),
    patientName: source.patientName ?? get(TAGS.PatientName),
    patientBirthDate: source.patientBirthDate ?? get(TAGS.PatientBirthDate),
    patientSex: source.patientSex ?? get(TAGS.PatientSex),
    accessionNumber: source.accessionNumber ?? get(TAGS.AccessionNumber),
    studyDate: source.studyDate ?? get(TAGS.StudyDate),
    studyTime: source.studyTime ?? get(TAGS.StudyTime),
    studyId: source.studyId ?? get(TAGS.StudyID),
    referringPhysicianName: source.referringPhysicianName ?? get(TAGS.ReferringPhysicianName),
  };
}

export async function dicomwebSources(
  ctx: CommandContext,
  client: DicomwebClient,
  selection: DicomwebSelection,
  options: { store: boolean; force: boolean; credentials: boolean },
): Promise<DicomwebWork> {
  const found = await discover(client, selection, { findDone: options.store && !options.force });
  const skipped = [...found.skipped];
  const todo: InstanceItem[] = [];
  for (const item of found.items) {
    if (item.study.done.has(item.instance)) {
      skipped.push({
        url: item.url,
        study: item.study.uid,
        series: item.series,
        instance: item.instance,
        reason: 'already_stored',
        message: 'a fedcxr report in the study already covers this image (--force to redo it)',
      });
    } else todo.push(item);
  }
  const done = skipped.filter((s) => s.reason === 'already_stored').length;
  const notImages = skipped.filter((s) => s.reason === 'not_image').length;
  ctx.log(
    `${client.baseUrl}: ${found.studies.length} stud${found.studies.length === 1 ? 'y' : 'ies'}, ${todo.length} image(s) to predict${done ? `, ${done} already reported` : ''}${notImages ? `, ${notImages} non-image object(s) skipped` : ''}${found.failed.length ? `, ${found.failed.length} failed` : ''}`,
  );
  for (const failure of found.failed) ctx.log(`failed (${failure.stage}) ${failure.file}: ${failure.error.message}`);

  // One report series (and one presentation state series) per study and run; instances numbered within it.
  const series = new Map<string, { uid: string; next: number }>();
  const seriesOf = (study: string, kind = 'SR') => {
    const key = `${kind} ${study}`;
    let entry = series.get(key);
    if (!entry) {
      entry = { uid: newUid(), next: 1 };
      series.set(key, entry);
    }
    return entry;
  };

  const sources = (preparation: InputPreparation): PredictSource[] =>
    todo.map((item, index) => {
      const where = { study: item.study.uid, series: item.series, instance: item.instance };
      return {
        image: item.url,
        stem: `${String(index + 1).padStart(5, '0')}_${item.instance}`,
        prepare: async () => {
          const bytes = await client.retrieveInstance(item.study.uid, item.series, item.instance);
          return prepareInputBytes(item.url, bytes, preparation);
        },
        srSource: (source) => withStudy(source, item.study),
        srOptions: () => {
          const entry = seriesOf(item.study.uid);
          return { seriesInstanceUid: entry.uid, instanceNumber: entry.next++ };
        },
        gspsOptions: () => {
          const entry = seriesOf(item.study.uid, 'PR');
          return { seriesInstanceUid: entry.uid, instanceNumber: entry.next++ };
        },
        store: async (report, presentation) => {
          // One request: the report and its presentation state are stored together or the image fails.
          const result = await client.store(presentation ? [report, presentation] : [report], item.study.uid);
          const wanted = presentation ? 2 : 1;
          if (result.failed.length > 0 || result.stored.length < wanted) {
            const why = result.failed.map((f) => f.message).join('; ') || 'the server did not store everything sent';
            throw new FedcxrError('dicomweb_store_failed', `STOW-RS refused the report: ${why}`);
          }
          // The answer lists what was stored, by SOP class (in the request's order when it gives no class).
          const ofClass = (uid: string, index: number) =>
            result.stored.find((s) => s.sopClassUid === uid) ?? result.stored[index];
          const sr = ofClass(COMPREHENSIVE_SR_SOP_CLASS, 0);
          return {
            ...where,
            report: sr.sopInstanceUid ?? '',
            report_series: seriesOf(item.study.uid).uid,
            url: sr.url,
            ...(presentation ? { presentation_state: ofClass(GSPS_SOP_CLASS, 1).sopInstanceUid ?? '' } : {}),
          };
        },
        skipReason: (error) =>
          error instanceof DicomError && error.code === 'no_pixel_data'
            ? {
                url: item.url,
                ...where,
                reason: 'not_image',
                message: `not an image: ${error.message.replace(`${item.url}: `, '')}`,
              }
            : null,
        failure: (thrown, stage) => {
          const error = asFedcxrError(explainDicomwebError(thrown, options.credentials), `${stage}_failed`);
          return { file: item.url, ...where, stage, error: { code: error.code, message: error.message } };
        },
      };
    });

  return { studies: found.studies.length, count: todo.length, sources, skipped, failed: found.failed };
}
