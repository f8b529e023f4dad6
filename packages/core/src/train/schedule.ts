import type { ScheduleConfig } from './config.js';

/**
 * The learning rate at a global optimizer step (0-based): linear warm-up from lr·warmupFactor to lr over
 * the first warmupSteps steps (torchvision's detection recipe), multiplied by the schedule's factor:
 * `step` multiplies by gamma once per milestone epoch reached (PyTorch MultiStepLR stepped per epoch),
 * `cosine` follows a half cosine from 1 to minFactor over the whole run (per step).
 */
export function learningRateAt(
  baseLr: number,
  schedule: ScheduleConfig,
  step: number,
  stepsPerEpoch: number,
  totalEpochs: number,
): number {
  let warm = 1;
  if (step < schedule.warmupSteps) {
    const alpha = step / schedule.warmupSteps;
    warm = schedule.warmupFactor * (1 - alpha) + alpha;
  }
  let factor = 1;
  if (schedule.type === 'step') {
    const epoch = Math.floor(step / Math.max(1, stepsPerEpoch)) + 1; // 1-based epoch this step belongs to
    const passed = schedule.milestones.filter((m) => epoch >= m).length;
    factor = schedule.gamma ** passed;
  } else if (schedule.type === 'cosine') {
    const total = Math.max(1, stepsPerEpoch * totalEpochs - 1);
    const progress = Math.min(1, step / total);
    factor = schedule.minFactor + (1 - schedule.minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  }
  return baseLr * warm * factor;
}
