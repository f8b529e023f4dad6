/**
 * Which instances a DICOMweb run works on: the studies (the given UIDs, or QIDO-RS searches by modality and
 * date), their series (of the asked modalities), their instances (images only: SRs, documents and other
 * non-image objects are skipped and listed), and fedcxr's own reports already in each study (so a rerun
 * skips what is done).
 */
import { FedcxrError } from '@fedcxr/core';
import {
  type DicomJson,
  type DicomwebClient,
  DicomwebError,
  jsonString,
  nonImageSopClass,
  referencedInstances,
  SR_SERIES_DESCRIPTION,
  DICOM_JSON_TAGS as TAGS,
} from '@fedcxr/dicom';
import type { DicomwebSelection } from './connect.js';

export interface StudyRecord {
  uid: string;
  /** The study's QIDO-RS attributes (patient and study module: what a report must repeat). */
  attributes: DicomJson;
  /** SOP Instance UIDs fedcxr's reports in this study already cover. */
  done: Set<string>;
}

export interface InstanceItem {
  study: StudyRecord;
  series: string;
  instance: string;
  sopClassUid?: string;
  /** The instance's attributes from the QIDO-RS instance search. */
  attributes: DicomJson;
  /** Its WADO-RS URL: how outputs name it. */
  url: string;
}

/** An instance (or a whole series, when `instance` is absent) left out, and why. */
export interface SkippedInstance {
  url: string;
  study: string;
  series?: string;
  instance?: string;
  reason: 'not_image' | 'modality' | 'already_stored' | 'already_pulled';
  message: string;
}

/** Something that failed: an instance (retrieve, decode, predict, store) or a whole study (unknown, listing). */
export interface FailedItem {
  file: string;
  study: string;
  series?: string;
  instance?: string;
  stage: 'study' | 'list' | 'retrieve' | 'decode' | 'predict' | 'store';
  error: { code: string; message: string };
}

export interface Discovery {
  studies: StudyRecord[];
  items: InstanceItem[];
  skipped: SkippedInstance[];
  failed: FailedItem[];
}

/** Errors that stop the whole run: nothing else will work either. */
function fatal(error: unknown): boolean {
  return (
    error instanceof DicomwebError &&
    (error.code === 'dicomweb_unreachable' || error.code === 'dicomweb_auth' || error.code === 'dicomweb_tls')
  );
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const code = (error: unknown) => (error as { code?: unknown }).code?.toString() ?? 'dicomweb_failed';

/**
 * Lists the work. `findDone`: read fedcxr's reports in each study to know which images are already done
 * (for `predict --store`).
 */
export async function discover(
  client: DicomwebClient,
  selection: DicomwebSelection,
  options: { findDone: boolean },
): Promise<Discovery> {
  const failed: FailedItem[] = [];
  const skipped: SkippedInstance[] = [];
  const studies = new Map<string, DicomJson>();
  const studyUrl = (uid: string) => `${client.baseUrl}/studies/${uid}`;

  if (selection.studies.length > 0) {
    for (const uid of selection.studies) {
      const found = await client.findStudy(uid);
      if (found) studies.set(uid, found);
      else {
        failed.push({
          file: studyUrl(uid),
          study: uid,
          stage: 'study',
          error: { code: 'dicomweb_unknown_study', message: `no study ${uid} on ${client.baseUrl}` },
        });
      }
    }
    if (studies.size === 0) {
      throw new FedcxrError(
        'dicomweb_unknown_study',
        selection.studies.length === 1
          ? `no study ${selection.studies[0]} on ${client.baseUrl} (unknown study)`
          : `none of the ${selection.studies.length} studies is on ${client.baseUrl} (unknown studies)`,
      );
    }
  } else {
    // One search per modality (a comma list in ModalitiesInStudy is not understood by every server).
    const modalities = selection.modalities.length ? selection.modalities : [undefined];
    for (const modality of modalities) {
      const found = await client.searchStudies({
        modality,
        studyDateFrom: selection.since,
        studyDateTo: selection.until,
      });
      for (const study of found) {
        const uid = jsonString(study, TAGS.StudyInstanceUID);
        if (uid && !studies.has(uid)) studies.set(uid, study);
      }
    }
  }

  const records: StudyRecord[] = [];
  const items: InstanceItem[] = [];
  for (const [uid, attributes] of studies) {
    const study: StudyRecord = { uid, attributes, done: new Set() };
    records.push(study);
    try {
      const series = await client.searchSeries(uid);
      for (const one of series) {
        const seriesUid = jsonString(one, TAGS.SeriesInstanceUID);
        if (!seriesUid) continue;
        const modality = jsonString(one, TAGS.Modality) ?? '';
        const seriesUrl = `${studyUrl(uid)}/series/${seriesUid}`;
        const own = jsonString(one, TAGS.SeriesDescription) === SR_SERIES_DESCRIPTION;
        if (own && modality === 'PR') continue; // fedcxr's presentation states: outputs, never inputs
        if (own && modality === 'SR') {
          // fedcxr's own reports: never an input; with findDone, what they cover is done.
          if (options.findDone) {
            for (const report of await client.retrieveSeriesMetadata(uid, seriesUid)) {
              if (jsonString(report, TAGS.Manufacturer) !== 'fedcxr') continue;
              for (const referenced of referencedInstances(report)) study.done.add(referenced);
            }
          }
          continue;
        }
        if (selection.modalities.length && !selection.modalities.includes(modality)) {
          skipped.push({
            url: seriesUrl,
            study: uid,
            series: seriesUid,
            reason: 'modality',
            message: `series of modality ${modality || '(none)'}, not ${selection.modalities.join(' or ')}`,
          });
          continue;
        }
        const instances = await client.searchInstances(uid, seriesUid);
        instances.sort(
          (a, b) => Number(jsonString(a, TAGS.InstanceNumber) ?? 0) - Number(jsonString(b, TAGS.InstanceNumber) ?? 0),
        );
        for (const instance of instances) {
          const sop = jsonString(instance, TAGS.SOPInstanceUID);
          if (!sop) continue;
          const sopClassUid = jsonString(instance, TAGS.SOPClassUID);
          const url = client.instanceUrl(uid, seriesUid, sop);
          const kind = nonImageSopClass(sopClassUid);
          if (kind) {
            skipped.push({
              url,
              study: uid,
              series: seriesUid,
              instance: sop,
              reason: 'not_image',
              message: `not an image: ${kind} (SOP class ${sopClassUid})`,
            });
            continue;
          }
          items.push({ study, series: seriesUid, instance: sop, sopClassUid, attributes: instance, url });
        }
      }
    } catch (error) {
      if (fatal(error)) throw error;
      failed.push({
        file: studyUrl(uid),
        study: uid,
        stage: 'list',
        error: { code: code(error), message: message(error) },
      });
    }
  }
  return { studies: records, items, skipped, failed };
}
