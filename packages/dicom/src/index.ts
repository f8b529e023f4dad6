export const VERSION = '0.1.0';
export {
  COMPREHENSIVE_SR_SOP_CLASS,
  newUid,
  type SrFinding,
  type SrOptions,
  type SrSourceImage,
  writeDetectionSr,
} from './sr.js';
export {
  CR_IMAGE_STORAGE,
  type DicomImageToWrite,
  EXPLICIT_VR_LITTLE_ENDIAN,
  encodeDicom,
  FEDCXR_IMPLEMENTATION_UID,
  uidFromText,
  writeDicom,
} from './write.js';
