export const VERSION = '0.1.0';
export {
  COMPREHENSIVE_SR_SOP_CLASS,
  newUid,
  type SrFinding,
  type SrOptions,
  type SrSourceImage,
  writeDetectionSr,
} from './sr.js';
