/**
 * The DICOM JSON model (PS3.18 F.2) as QIDO-RS and WADO-RS metadata return it: objects keyed by 8-digit hex
 * tags, each `{vr, Value?}`. Small readers for the attributes fedcxr needs.
 */

export interface DicomJsonAttribute {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
  BulkDataURI?: string;
}

export type DicomJson = Record<string, DicomJsonAttribute>;

/** The tags fedcxr reads or queries by, as DICOM JSON keys. */
export const TAGS = {
  SpecificCharacterSet: '00080005',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  Manufacturer: '00080070',
  ReferringPhysicianName: '00080090',
  SeriesDescription: '0008103E',
  ReferencedSOPInstanceUID: '00081155',
  FailureReason: '00081197',
  FailedSOPSequence: '00081198',
  ReferencedSOPSequence: '00081199',
  ReferencedSeriesSequence: '00081115',
  RetrieveURL: '00081190',
  PatientName: '00100010',
  PatientID: '00100020',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  StudyID: '00200010',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  NumberOfStudyRelatedInstances: '00201208',
  Rows: '00280010',
  Columns: '00280011',
  CurrentRequestedProcedureEvidenceSequence: '0040A375',
} as const;

/** The attribute's values as strings (person names: their Alphabetic form). */
export function jsonStrings(dataset: DicomJson, tag: string): string[] {
  const values = dataset[tag]?.Value ?? [];
  return values
    .map((value) => {
      if (value === null || value === undefined) return '';
      if (typeof value === 'object') return String((value as { Alphabetic?: unknown }).Alphabetic ?? '');
      return String(value);
    })
    .filter((value) => value !== '');
}

/** The attribute's first value as a string, or undefined when absent or empty. */
export function jsonString(dataset: DicomJson, tag: string): string | undefined {
  return jsonStrings(dataset, tag)[0];
}

/** A sequence attribute's items. */
export function jsonSequence(dataset: DicomJson, tag: string): DicomJson[] {
  return ((dataset[tag]?.Value ?? []) as unknown[]).filter(
    (item): item is DicomJson => typeof item === 'object' && item !== null,
  );
}

/**
 * SOP Instance UIDs an SR or other evidence-bearing object references: Current Requested Procedure Evidence and
 * the like (PS3.3 C.17.2), i.e. which images it reports on.
 */
export function referencedInstances(dataset: DicomJson): string[] {
  const uids: string[] = [];
  for (const study of jsonSequence(dataset, TAGS.CurrentRequestedProcedureEvidenceSequence)) {
    for (const series of jsonSequence(study, TAGS.ReferencedSeriesSequence)) {
      for (const sop of jsonSequence(series, TAGS.ReferencedSOPSequence)) {
        const uid = jsonString(sop, TAGS.ReferencedSOPInstanceUID);
        if (uid) uids.push(uid);
      }
    }
  }
  return uids;
}
