/**
 * Detections as a DICOM Structured Report a PACS can store next to the study: a Comprehensive SR following
 * TID 1500 (Measurement Report), one Measurement Group per box holding the finding (class), the detector's
 * score and the box as a closed POLYLINE SCOORD selected from the source image (referenced by its UIDs).
 */
import {
  algorithmLabel,
  closedRectangle,
  derivedObjectHeader,
  dicomDateTime,
  encodeNaturalized,
  type Naturalized,
  newUid,
  referencedImage,
  type SrOptions,
  type SrSourceImage,
} from './derived.js';

export { newUid, SR_SERIES_DESCRIPTION, type SrOptions, type SrSourceImage } from './derived.js';

export interface SrFinding {
  /** Class name (also the code meaning). */
  label: string;
  score: number;
  /** x1, y1, x2, y2 in the source image's pixel coordinates (column, row). */
  box: [number, number, number, number];
}

export const COMPREHENSIVE_SR_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.88.33';
/** Private coding scheme for fedcxr's finding classes and score concept (99 prefix: local scheme, PS3.16 8.2). */
export const FEDCXR_CODING_SCHEME = '99FEDCXR';

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
  const { date, time } = dicomDateTime(options.now ?? new Date());
  const imageReference = referencedImage(source);

  const groups = findings.map((finding, index) => {
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
          GraphicData: closedRectangle(finding.box),
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
    ...derivedObjectHeader(source, options, {
      sopClassUid: COMPREHENSIVE_SR_SOP_CLASS,
      modality: 'SR',
      seriesNumber: '9901',
    }),
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
        TextValue: algorithmLabel(options),
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
  return encodeNaturalized(dataset);
}
