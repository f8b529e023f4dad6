export { type CheckpointCard, type CheckpointKind, readSnapshot } from './checkpoint.js';
export {
  type AugmentationConfig,
  augmentationConfigSchema,
  type OptimizerConfig,
  parseTrainConfig,
  type SamplerConfig,
  type ScheduleConfig,
  type TrainConfig,
  type TrainConfigInput,
  trainConfigSchema,
} from './config.js';
export { type DetectionDataset, datasetFromCoco, openCocoDataset } from './dataset.js';
export {
  type EpochRecord,
  type ProximalTerm,
  pickMetric,
  type TrainEvent,
  type TrainRunOptions,
  type TrainRunSummary,
  type TrainState,
  trainDetector,
  trainStep,
  type ValidationDetail,
  validate,
} from './loop.js';
export { SgdOptimizer, type SgdOptions } from './optimizer.js';
export { deriveSeed, Rng, rngFor } from './rng.js';
export {
  buildTrainingDetector,
  loadInitialWeights,
  type RunTrainingOptions,
  runTraining,
  type TrainingOutcome,
} from './run.js';
export { EpochSampler, repeatFactors, type SamplerInput } from './sampler.js';
export { learningRateAt, type SchedulePosition } from './schedule.js';
export { type SyntheticSet, synthesizeShapes } from './synthetic.js';
export { registerTinyGridDetector, TinyGridDetector, type TinyGridOptions } from './tiny-detector.js';
