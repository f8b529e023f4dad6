export {
  type CategoryMetrics,
  COCO_STAT_NAMES,
  type CocoEvalOptions,
  type CocoEvalParams,
  type CocoEvalResult,
  defaultCocoEvalParams,
  evaluateCoco,
  precisionRecallCurve,
  type SummarizeQuery,
  summarize,
} from './coco-eval.js';
export {
  type FrocHitCriterion,
  type FrocOptions,
  type FrocResult,
  froc,
  frocCurve,
  frocProbabilities,
  frocScore,
  LUNA16_FP_RATES,
} from './froc.js';
export { detectionsToCocoResults } from './results.js';
export { RSNA_THRESHOLDS, type RsnaMapOptions, type RsnaMapResult, rsnaMap } from './rsna.js';
export { evaluateVoc, type VocApMethod, type VocClassResult, type VocEvalOptions, type VocEvalResult } from './voc.js';
