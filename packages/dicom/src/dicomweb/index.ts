/**
 * DICOMweb (PS3.18): a client for QIDO-RS, WADO-RS and STOW-RS, multipart/related bodies and the DICOM JSON
 * model. Plain node:http(s); it imports nothing of TensorFlow.js or of the other fedcxr packages (not even
 * `@fedcxr/base`).
 */
export {
  DicomwebClient,
  type DicomwebClientOptions,
  type FailedStore,
  type StoredInstance,
  type StoreResult,
} from './client.js';
export { DicomwebError, type DicomwebErrorCode } from './errors.js';
export type { HttpResponse } from './http.js';
export {
  type DicomJson,
  type DicomJsonAttribute,
  jsonSequence,
  jsonString,
  jsonStrings,
  referencedInstances,
  TAGS,
} from './json.js';
export {
  buildMultipart,
  type MediaType,
  type MultipartBody,
  type MultipartPart,
  parseMediaType,
  parseMultipart,
} from './multipart.js';
export {
  dateRange,
  isDicomDate,
  type QueryParameters,
  resourceUrl,
  type StudySearch,
  studySearchParameters,
  withQuery,
} from './query.js';
export { nonImageSopClass } from './sop-classes.js';
