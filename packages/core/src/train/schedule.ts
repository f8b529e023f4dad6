import type { ScheduleConfig } from './config.js';

/** Where training stands when the learning rate is asked for. */
export interface SchedulePosition {
  /** Optimizer steps taken so far in the whole run (0-based index of this step). */
  globalStep: number;
  /** 0-based epoch of this step. */
  epoch: number;
  /** Fraction of this epoch done before this step, in [0, 1). */
  epochFraction: number;
  totalEpochs: number;
}

/**
 * The learning rate for one optimizer step: linear warm-up from lr·warmupFactor to lr over the first
 * warmupSteps steps (torchvision's detection recipe) — or, with warmupEpochs, over that many epochs of
 * progress (epoch + epochFraction), which for epochs of S steps and warmupEpochs·S whole is exactly the
 * step-counted warm-up of warmupEpochs·S steps — multiplied by the schedule's factor: `step`
 * multiplies by gamma once per milestone epoch reached (PyTorch MultiStepLR stepped per epoch, milestones
 * 1-based), `cosine` follows a half cosine from 1 to minFactor over the run's progress in epochs (epochs
 * can differ in length when repeat-factor sampling rounds stochastically, so progress is counted in epochs).
 */
export function learningRateAt(baseLr: number, schedule: ScheduleConfig, at: SchedulePosition): number {
  let warm = 1;
  if (schedule.warmupEpochs != null) {
    const progress = at.epoch + at.epochFraction;
    if (progress < schedule.warmupEpochs) {
      const alpha = progress / schedule.warmupEpochs;
      warm = schedule.warmupFactor * (1 - alpha) + alpha;
    }
  } else if (at.globalStep < schedule.warmupSteps) {
    const alpha = at.globalStep / schedule.warmupSteps;
    warm = schedule.warmupFactor * (1 - alpha) + alpha;
  }
  let factor = 1;
  if (schedule.type === 'step') {
    const passed = schedule.milestones.filter((m) => at.epoch + 1 >= m).length;
    factor = schedule.gamma ** passed;
  } else if (schedule.type === 'cosine') {
    const progress = Math.min(1, (at.epoch + at.epochFraction) / Math.max(1, at.totalEpochs));
    factor = schedule.minFactor + (1 - schedule.minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  }
  return baseLr * warm * factor;
}
