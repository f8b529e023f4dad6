export const VERSION = '0.1.0';

export { type DevCertificateFiles, type DevCertificateOptions, generateDevCertificates } from './certs.js';
export { COCO_GRID, readCoco, rowsFromCoco } from './coco-features.js';
export {
  bytesPerElement,
  chunksOf,
  type DecodedModel,
  decodeModel,
  encodedByteLength,
  encodeModel,
  encodeUpdate,
  l2Norm,
  StreamingUpdateDecoder,
  sha256Hex,
  specsOf,
  subtractTensors,
  totalElements,
} from './codec.js';
export {
  type LabelledRows,
  makeSyntheticRows,
  readSiteData,
  type SiteDataFile,
  type SplitMode,
  selectRows,
  shardByPatient,
  splitValidation,
  writeSiteData,
} from './data.js';
export { DetectorTrainer, type DetectorTrainerOptions, federatedWeights } from './detector-trainer.js';
export { clipAndNoise, type DpApplied, gaussianEpsilon } from './dp.js';
export {
  PRIVATE_DIR_MODE,
  PRIVATE_FILE_MODE,
  writePrivateFileAtomic,
  writePrivateJsonAtomic,
} from './private-file.js';
export * from './protocol.js';
export {
  addMasked,
  addMaskStream,
  checkThreshold,
  decryptShare,
  defaultThreshold,
  dequantize,
  encryptShare,
  generateSecAggKeys,
  maskStream,
  maskUpdate,
  type PairSeed,
  pairSeed,
  privateKeyBytes,
  privateKeyFromBytes,
  publicKeyHex,
  quantize,
  type RevealedShare,
  type RevealKind,
  removeDroppedMasks,
  type SecAggKeyPair,
  type SecAggPeer,
  SecAggRefusal,
  SecAggSession,
  unmaskSum,
} from './secagg.js';
export { combineShares, interpolateAt, SHARE_BYTES, type Share, splitSecret } from './shamir.js';
export {
  classifyConnectError,
  SiteAgent,
  type SiteAgentOptions,
  untilRoundsFinished,
} from './site-agent.js';
export {
  buildSiteDetector,
  type DetectorTrainerConfig,
  detectorTrainerOptions,
  localTrainers,
  type SiteConfig,
  type SiteConfigInput,
  siteAgentFromConfig,
  siteConfigSchema,
  type TrainerBuildOptions,
} from './site-config.js';
export { type SiteProcess, spawnSiteProcess } from './spawn.js';
export {
  createTabularModel,
  evaluateTabular,
  mulberry32,
  type TabularData,
  type TabularModelOptions,
  TabularTrainer,
  trainCentralized,
} from './tabular-trainer.js';
export type { LocalTrainer, LocalTrainPlan, LocalUpdateResult } from './trainer.js';
