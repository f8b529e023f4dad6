/**
 * Evaluation of the global model by the sites, outside rounds: every connected site gets an `evaluate` plan,
 * runs the model on its validation data and reports aggregate metrics only (eval:report); the result is their
 * example-weighted mean.
 */
import { type Evaluation, evaluationReportSchema, type Metrics, type RoundPlan } from '@fedcxr/federated';
import { weightedMean } from './round-close.js';
import type { Reply, SiteInfo } from './site-gateway.js';

export interface EvaluationResult {
  numExamples: number;
  metrics: Metrics;
  sites: string[];
}

export class SiteEvaluation {
  private pending: { modelHash: string; reports: Map<string, Evaluation>; reported: () => void } | undefined;

  /** A site's report: taken only for the model being evaluated now. */
  report(siteId: string, raw: unknown, reply: Reply) {
    const report = evaluationReportSchema.safeParse(raw);
    const pending = this.pending;
    if (!report.success || !pending || report.data.modelHash !== pending.modelHash)
      return reply({ ok: false, code: 'eval', error: 'no evaluation of that model is open' });
    pending.reports.set(siteId, report.data.evaluation);
    pending.reported();
    reply({ ok: true });
  }

  /** Sends `plan` to `sites` and waits for all their reports, or `timeoutMs`. */
  async run(plan: RoundPlan, sites: SiteInfo[], timeoutMs: number): Promise<EvaluationResult> {
    const reports = new Map<string, Evaluation>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.pending = {
        modelHash: plan.modelHash,
        reports,
        reported: () => {
          if (reports.size >= sites.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      };
      for (const site of sites) site.socket?.emit('round:plan', plan);
      if (sites.length === 0) resolve();
    });
    this.pending = undefined;
    const entries = [...reports.entries()];
    return {
      numExamples: entries.reduce((n, [, e]) => n + e.numExamples, 0),
      metrics: weightedMean(entries.map(([, e]) => ({ weight: e.numExamples, metrics: e.metrics }))),
      sites: entries.map(([id]) => id),
    };
  }
}
