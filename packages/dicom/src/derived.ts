/**
 * What every DICOM object fedcxr derives from an image shares (its SR and its presentation state): the
 * patient and study of the source, a new series and instance of fedcxr's, creation date and time, a closed
 * rectangle as graphic data, and the encoding (explicit VR little endian, through dcmjs).
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

/** The source image's identity, as read from its header. */
export interface SrSourceImage {
  studyInstanceUid: string;
  seriesInstanceUid?: string;
  sopInstanceUid: string;
  sopClassUid: string;
  patientId?: string;
  patientName?: string;
  patientBirthDate?: string;
  patientSex?: string;
  accessionNumber?: string;
  studyDate?: string;
  studyTime?: string;
  studyId?: string;
  referringPhysicianName?: string;
}

export interface SrOptions {
  algorithmName?: string;
  algorithmVersion?: string;
  /** Fixed UIDs/time for reproducible output in tests; generated when absent. */
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  /** InstanceNumber within its series (default 1): several reports of one run can share a series. */
  instanceNumber?: number;
  now?: Date;
}

/** The SeriesDescription (and Manufacturer, `fedcxr`) of every report: how a PACS query finds fedcxr's reports. */
export const SR_SERIES_DESCRIPTION = 'fedcxr detections';

export type Naturalized = Record<string, unknown>;
const dcmjs = createRequire(import.meta.url)('dcmjs') as {
  data: { datasetToBuffer(dataset: Naturalized): Buffer };
};

/** A new DICOM UID under the UUID-derived root 2.25 (PS3.5 B.2). */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

/** DA and TM of an instant (UTC). */
export function dicomDateTime(now: Date): { date: string; time: string } {
  const iso = now.toISOString();
  return { date: iso.slice(0, 10).replace(/-/g, ''), time: iso.slice(11, 19).replace(/:/g, '') };
}

/** The source image as a referenced-SOP item (an SR's evidence, a presentation state's referenced image). */
export function referencedImage(source: SrSourceImage): {
  ReferencedSOPClassUID: string;
  ReferencedSOPInstanceUID: string;
} {
  return { ReferencedSOPClassUID: source.sopClassUid, ReferencedSOPInstanceUID: source.sopInstanceUid };
}

/** A box x1, y1, x2, y2 as a closed POLYLINE's column/row pairs (first point repeated, PS3.3 C.18.6.1.2). */
export function closedRectangle([x1, y1, x2, y2]: readonly number[]): number[] {
  return [x1, y1, x2, y1, x2, y2, x1, y2, x1, y1].map((v) => Number(v.toFixed(3)));
}

/**
 * The attributes a derived object takes from its source and the new series it starts: file meta, SOP class
 * and instance, character set, modality, the study, fedcxr's series, the patient and study modules.
 */
export function derivedObjectHeader(
  source: SrSourceImage,
  options: SrOptions,
  object: { sopClassUid: string; modality: string; seriesNumber: string },
): Naturalized {
  return {
    _meta: { TransferSyntaxUID: { Value: ['1.2.840.10008.1.2.1'] } },
    _vrMap: {},
    SOPClassUID: object.sopClassUid,
    SOPInstanceUID: options.sopInstanceUid ?? newUid(),
    SpecificCharacterSet: 'ISO_IR 192',
    Modality: object.modality,
    StudyInstanceUID: source.studyInstanceUid,
    SeriesInstanceUID: options.seriesInstanceUid ?? newUid(),
    SeriesNumber: object.seriesNumber,
    SeriesDescription: SR_SERIES_DESCRIPTION,
    InstanceNumber: String(options.instanceNumber ?? 1),
    Manufacturer: 'fedcxr',
    PatientID: source.patientId ?? '',
    PatientName: source.patientName ?? '',
    PatientBirthDate: source.patientBirthDate ?? '',
    PatientSex: source.patientSex ?? '',
    AccessionNumber: source.accessionNumber ?? '',
    StudyDate: source.studyDate ?? '',
    StudyTime: source.studyTime ?? '',
    StudyID: source.studyId ?? '',
    ReferringPhysicianName: source.referringPhysicianName ?? '',
  };
}

/** The algorithm's name and version, as one string. */
export function algorithmLabel(options: SrOptions): string {
  return `${options.algorithmName ?? 'fedcxr'} ${options.algorithmVersion ?? ''}`.trim();
}

/** A naturalized dataset as a DICOM Part 10 file (explicit VR little endian). */
export function encodeNaturalized(dataset: Naturalized): Uint8Array {
  return new Uint8Array(dcmjs.data.datasetToBuffer(dataset));
}
