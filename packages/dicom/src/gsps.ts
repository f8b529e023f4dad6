/**
 * Detections as a Grayscale Softcopy Presentation State (PS3.3 A.33.1) a PACS viewer shows over the image:
 * each box a closed POLYLINE graphic object and its class and score a text object, on one graphic layer,
 * with the image's own display settings (modality LUT, window, MONOCHROME1 inversion) carried over so that
 * the image looks as it does without the presentation state (PS3.4 N.2: a viewer applying a GSPS ignores the
 * image's window).
 */
import {
  algorithmLabel,
  closedRectangle,
  derivedObjectHeader,
  dicomDateTime,
  encodeNaturalized,
  type Naturalized,
  referencedImage,
  type SrOptions,
  type SrSourceImage,
} from './derived.js';
import type { SrFinding } from './sr.js';

export const GSPS_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.11.1';
/** The graphic layer fedcxr draws on. */
export const GSPS_LAYER = 'FEDCXR';

/** The source image: its identity plus what its display depends on. */
export interface GspsSourceImage extends SrSourceImage {
  columns: number;
  rows: number;
  photometricInterpretation?: string;
  windowCenter?: number;
  windowWidth?: number;
  voiLutFunction?: string;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  rescaleType?: string;
}

/** Writes the presentation state for one image's detections; returns the DICOM file's bytes. */
export function writeDetectionGsps(
  image: GspsSourceImage,
  findings: readonly SrFinding[],
  options: SrOptions = {},
): Uint8Array {
  const { date, time } = dicomDateTime(options.now ?? new Date());
  const imageReference = referencedImage(image);
  const round = (v: number) => Number(v.toFixed(3));
  // PIXEL annotation units (PS3.3 C.10.5.1.2): 0\0 is the top-left corner of the top-left pixel and
  // Columns\Rows the bottom-right corner of the last one: the boxes' own convention (column, row), no shift.
  const graphics = findings.map((finding) => {
    return {
      GraphicAnnotationUnits: 'PIXEL',
      GraphicDimensions: 2,
      NumberOfGraphicPoints: 5,
      GraphicData: closedRectangle(finding.box),
      GraphicType: 'POLYLINE',
      GraphicFilled: 'N',
    };
  });
  const texts = findings.map((finding) => {
    const [x1, y1] = finding.box;
    return {
      UnformattedTextValue: `${finding.label} ${finding.score.toFixed(2)}`,
      AnchorPointAnnotationUnits: 'PIXEL',
      AnchorPoint: [round(x1), round(Math.max(0, y1))],
      AnchorPointVisibility: 'N',
    };
  });
  const modalityLut =
    image.rescaleSlope !== undefined || image.rescaleIntercept !== undefined
      ? {
          RescaleSlope: String(image.rescaleSlope ?? 1),
          RescaleIntercept: String(image.rescaleIntercept ?? 0),
          RescaleType: image.rescaleType ?? 'US',
        }
      : {};
  const voiLut =
    image.windowCenter !== undefined && image.windowWidth !== undefined
      ? {
          SoftcopyVOILUTSequence: [
            {
              ReferencedImageSequence: [imageReference],
              WindowCenter: String(image.windowCenter),
              WindowWidth: String(image.windowWidth),
              ...(image.voiLutFunction ? { VOILUTFunction: image.voiLutFunction } : {}),
            },
          ],
        }
      : {};
  const dataset: Naturalized = {
    ...derivedObjectHeader(image, options, { sopClassUid: GSPS_SOP_CLASS, modality: 'PR', seriesNumber: '9902' }),
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    SoftwareVersions: algorithmLabel(options).slice(0, 64),
    ContentLabel: 'FEDCXR',
    ContentDescription: 'fedcxr detections: boxes with class and score',
    PresentationCreationDate: date,
    PresentationCreationTime: time,
    ContentCreatorName: 'fedcxr',
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: image.seriesInstanceUid ?? '',
        ReferencedImageSequence: [imageReference],
      },
    ],
    DisplayedAreaSelectionSequence: [
      {
        DisplayedAreaTopLeftHandCorner: [1, 1],
        DisplayedAreaBottomRightHandCorner: [image.columns, image.rows],
        PresentationSizeMode: 'SCALE TO FIT',
        PresentationPixelAspectRatio: [1, 1],
      },
    ],
    GraphicLayerSequence: [
      {
        GraphicLayer: GSPS_LAYER,
        GraphicLayerOrder: 1,
        GraphicLayerRecommendedDisplayGrayscaleValue: 0xffff,
        GraphicLayerDescription: 'fedcxr detections',
      },
    ],
    ...(findings.length > 0
      ? {
          GraphicAnnotationSequence: [
            {
              ReferencedImageSequence: [imageReference],
              GraphicLayer: GSPS_LAYER,
              TextObjectSequence: texts,
              GraphicObjectSequence: graphics,
            },
          ],
        }
      : {}),
    ...modalityLut,
    ...voiLut,
    // MONOCHROME1 stores dark as high: the presentation LUT inverts so that P-values read as MONOCHROME2.
    PresentationLUTShape: image.photometricInterpretation === 'MONOCHROME1' ? 'INVERSE' : 'IDENTITY',
  };
  return encodeNaturalized(dataset);
}
