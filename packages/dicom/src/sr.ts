/**
 * Detections as a DICOM Structured Report a PACS can store next to the study: a Comprehensive SR following
 * TID 1500 (Measurement Report), one Measurement Group per box holding the finding (class), the detector's
 * score and the box as a closed POLYLINE SCOORD selected from the source image (referenced by its UIDs).
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

export interface SrFinding {
  /** Class name (also the code meaning). */
  label: string;
  score: number;
  /** x1, y1, x2, y2 in the source image's pixel coordinates (column, row). */
  box: [number, number, number, number];
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

export const COMPREHENSIVE_SR_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.88.33';
/** The SeriesDescription (and Manufacturer, `fedcxr`) of every report: how a PACS query finds fedcxr's reports. */
export const SR_SERIES_DESCRIPTION = 'fedcxr detections';
/** Private coding scheme for fedcxr's finding classes and score concept (99 prefix: local scheme, PS3.16 8.2). */
export const FEDCXR_CODING_SCHEME = '99FEDCXR';

type Naturalized = Record<string, unknown>;
interface DcmjsData {
  data: { datasetToBuffer(dataset: Naturalized): Buffer };
}
const dcmjs = createRequire(import.meta.url)('dcmjs') as DcmjsData;

/** A new DICOM UID under the UUID-derived root 2.25 (PS3.5 B.2). */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

const code = (value: string, scheme: string, meaning: string) => ({
  CodeValue: value,
  CodingSchemeDesignator: scheme,
  CodeMeaning: meaning.slice(0, 64),
});

/** Writes the SR for one image's detections; returns the DICOM file's bytes (explicit VR little endian). */
export function writeDetectionSr(
  source: SrSourceImage,
  findings: readonly SrFinding[],
  options: SrOptions = {},
): Uint8Array {
  const now = options.now ?? new Date();
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  const time = now.toISOString().slice(11, 19).replace(/:/g, '');
  const sopInstanceUid = options.sopInstanceUid ?? newUid();
  const imageReference = {
    ReferencedSOPClassUID: source.sopClassUid,
    ReferencedSOPInstanceUID: source.sopInstanceUid,
  };

  const groups = findings.map((finding, index) => {
    const [x1, y1, x2, y2] = finding.box;
    return {
      RelationshipType: 'CONTAINS',
      ValueType: 'CONTAINER',
      ConceptNameCodeSequence: [code('125007', 'DCM', 'Measurement Group')],
      ContinuityOfContent: 'SEPARATE',
      ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '1410' }],
      ContentSequence: [
        {
          RelationshipType: 'HAS OBS CONTEXT',
          ValueType: 'TEXT',
          ConceptNameCodeSequence: [code('112039', 'DCM', 'Tracking Identifier')],
          TextValue: `detection ${index + 1}`,
        },
        {
          RelationshipType: 'HAS OBS CONTEXT',
          ValueType: 'UIDREF',
          ConceptNameCodeSequence: [code('112040', 'DCM', 'Tracking Unique Identifier')],
          UID: newUid(),
        },
        {
          RelationshipType: 'CONTAINS',
          ValueType: 'CODE',
          ConceptNameCodeSequence: [code('121071', 'DCM', 'Finding')],
          ConceptCodeSequence: [code(finding.label.slice(0, 16), FEDCXR_CODING_SCHEME, finding.label)],
        },
        {
          RelationshipType: 'CONTAINS',
          ValueType: 'NUM',
          ConceptNameCodeSequence: [code('score', FEDCXR_CODING_SCHEME, 'Detection score')],
          MeasuredValueSequence: [
            {
              MeasurementUnitsCodeSequence: [code('1', 'UCUM', 'no units')],
              NumericValue: Number(finding.score.toPrecision(6)),
            },
          ],
        },
        {
          RelationshipType: 'CONTAINS',
          ValueType: 'SCOORD',
          ConceptNameCodeSequence: [code('111030', 'DCM', 'Image Region')],
          GraphicType: 'POLYLINE',
          // Column/row pairs of the closed rectangle (first point repeated, PS3.3 C.18.6.1.2).
          GraphicData: [x1, y1, x2, y1, x2, y2, x1, y2, x1, y1].map((v) => Number(v.toFixed(3))),
          ContentSequence: [
            {
              RelationshipType: 'SELECTED FROM',
              ValueType: 'IMAGE',
              ReferencedSOPSequence: [imageReference],
            },
          ],
        },
      ],
    };
  });

  const dataset: Naturalized = {
    _meta: { TransferSyntaxUID: { Value: ['1.2.840.10008.1.2.1'] } },
    _vrMap: {},
    SOPClassUID: COMPREHENSIVE_SR_SOP_CLASS,
    SOPInstanceUID: sopInstanceUid,
    SpecificCharacterSet: 'ISO_IR 192',
    Modality: 'SR',
    StudyInstanceUID: source.studyInstanceUid,
    SeriesInstanceUID: options.seriesInstanceUid ?? newUid(),
    SeriesNumber: '9901',
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
    ContentDate: date,
    ContentTime: time,
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [code('126000', 'DCM', 'Imaging Measurement Report')],
    ContinuityOfContent: 'SEPARATE',
    ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '1500' }],
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: source.studyInstanceUid,
        ReferencedSeriesSequence: [
          {
            SeriesInstanceUID: source.seriesInstanceUid ?? '',
            ReferencedSOPSequence: [imageReference],
          },
        ],
      },
    ],
    ContentSequence: [
      {
        RelationshipType: 'HAS CONCEPT MOD',
        ValueType: 'CODE',
        ConceptNameCodeSequence: [code('121049', 'DCM', 'Language of Content Item and Descendants')],
        ConceptCodeSequence: [code('en-US', 'RFC5646', 'English (United States)')],
      },
      {
        RelationshipType: 'HAS OBS CONTEXT',
        ValueType: 'CODE',
        ConceptNameCodeSequence: [code('121005', 'DCM', 'Observer Type')],
        ConceptCodeSequence: [code('121007', 'DCM', 'Device')],
      },
      {
        RelationshipType: 'HAS OBS CONTEXT',
        ValueType: 'TEXT',
        ConceptNameCodeSequence: [code('121013', 'DCM', 'Device Observer UID')],
        TextValue: `${options.algorithmName ?? 'fedcxr'} ${options.algorithmVersion ?? ''}`.trim(),
      },
      {
        RelationshipType: 'HAS CONCEPT MOD',
        ValueType: 'CODE',
        ConceptNameCodeSequence: [code('121058', 'DCM', 'Procedure reported')],
        ConceptCodeSequence: [code('36643-5', 'LN', 'XR Chest 2V')],
      },
      {
        RelationshipType: 'CONTAINS',
        ValueType: 'CONTAINER',
        ConceptNameCodeSequence: [code('126010', 'DCM', 'Imaging Measurements')],
        ContinuityOfContent: 'SEPARATE',
        ContentSequence: groups,
      },
    ],
  };
  return new Uint8Array(dcmjs.data.datasetToBuffer(dataset));
}
