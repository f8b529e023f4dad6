export { deriveSeed, Rng, rngFor } from '@fedcxr/base';
export { type CheckpointCard, type CheckpointKind, readSnapshot } from './checkpoint.js';
export {
  type AugmentationConfig,
  augmentationConfigSchema,
  DEFAULT_BACKBONE,
  NO_AUGMENTATION,
  NORMALIZATION_PRESETS,
  type NormalizationPreset,
  normalizationPreset,
  normalizationSchema,
  type OptimizerConfig,
  optimizerConfigSchema,
  parseRecipe,
  parseTrainConfig,
  recipeSchema,
  recipeShape,
  type SamplerConfig,
  type ScheduleConfig,
  samplerConfigSchema,
  scheduleConfigSchema,
  type TrainConfig,
  type TrainConfigInput,
  type TrainingRecipe,
  type TrainingRecipeInput,
  trainConfigSchema,
} from './config.js';
export { type DetectionDataset, datasetFromCoco, openCocoDataset } from './dataset.js';
export {
  createOptimizer,
  type EngineEpochReport,
  type EngineHooks,
  type EnginePosition,
  type EngineStepInfo,
  type EngineStepReport,
  type EpochEngineOptions,
  type ProximalTerm,
  positionAtEpoch,
  runEpochs,
  trainStep,
} from './engine.js';
export {
  type EpochRecord,
  pickMetric,
  type TrainEvent,
  type TrainRunOptions,
  type TrainRunSummary,
  type TrainState,
  trainDetector,
  type ValidationDetail,
  validate,
} from './loop.js';
export { SgdOptimizer, type SgdOptions } from './optimizer.js';
export {
  buildTrainingDetector,
  loadInitialWeights,
  type RunTrainingOptions,
  runTraining,
  type TrainingOutcome,
  trainingRandomness,
} from './run.js';
export { EpochSampler, repeatFactors, type SamplerInput } from './sampler.js';
export { learningRateAt, type SchedulePosition } from './schedule.js';
export { type SyntheticSet, synthesizeShapes } from './synthetic.js';
export { registerTinyGridDetector, TinyGridDetector, type TinyGridOptions } from './tiny-detector.js';
