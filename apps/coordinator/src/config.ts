import { encodingSchema, siteIdSchema } from '@fedcxr/federated';
import { z } from 'zod';
import { strategies } from './strategies/registry.js';

/** The coordinator's config file (`cxr fed coordinator --config coordinator.yaml`). */
export const coordinatorConfigSchema = z.strictObject({
  host: z.string().default('127.0.0.1'),
  /** 0 picks a free port. */
  port: z.number().int().min(0).max(65535).default(8443),
  /** Checkpoints, round journals, spooled updates and the audit log. */
  stateDir: z.string().min(1),
  /** Bearer token of the admin API (`cxr fed round start`); also signs an admin into the dashboard. */
  adminToken: z.string().min(16),
  /** Read-only token for the dashboard and `/api/status` (`cxr fed status --token`): redacted view. */
  viewerToken: z.string().min(16).optional(),
  /** Lifetime of a dashboard login (session cookie). */
  sessionTtlMs: z
    .number()
    .int()
    .min(1000)
    .default(8 * 3600_000),
  /** The audit log: rotation, and how refused attempts are summarised and rate-limited per source. */
  audit: z
    .strictObject({
      maxBytes: z
        .number()
        .int()
        .min(4096)
        .default(64 * 1024 * 1024),
      refusalIntervalMs: z.number().int().min(100).default(60_000),
      /** Refusals per source and interval before its further refusals are answered only after tarpitMs. */
      maxRefusalsPerInterval: z.number().int().min(1).default(20),
      tarpitMs: z.number().int().min(0).default(1000),
      maxSources: z.number().int().min(1).default(10_000),
    })
    .prefault({}),
  /** PEM file paths; when present the coordinator serves HTTPS/WSS only. */
  tls: z
    .strictObject({
      cert: z.string(),
      key: z.string(),
      /** When set, sites must also present a client certificate from this CA whose CN is their site id. */
      clientCa: z.string().optional(),
    })
    .optional(),
  sites: z
    .array(
      z.strictObject({
        id: siteIdSchema,
        token: z.string().min(16),
        /** The site's example count as the federation agreed it: its FedAvg weight is never more than this. */
        examples: z.number().int().positive().optional(),
      }),
    )
    .min(1),
  /** Initial global model when the state dir is empty: a model file, or the small tabular model. */
  initialModel: z.string().optional(),
  model: z
    .strictObject({
      kind: z.literal('tabular'),
      features: z.number().int().positive(),
      classes: z.number().int().min(2),
      hidden: z.number().int().min(0).default(0),
      seed: z.number().int().default(0),
    })
    .optional(),
  /**
   * socket.io heartbeat. A site's training step holds its event loop (a Faster R-CNN step on a CPU can take
   * many seconds), so the timeout is generous; a killed site is still seen at once (its socket closes).
   */
  heartbeat: z
    .strictObject({
      intervalMs: z.number().int().min(100).default(25_000),
      timeoutMs: z.number().int().min(100).default(120_000),
    })
    .default({ intervalMs: 25_000, timeoutMs: 120_000 }),
  round: z
    .strictObject({
      epochs: z.number().int().min(1).default(1),
      /** FedProx μ sent to the sites (0 = none), whatever the strategy; `fedprox` takes its default from it. */
      mu: z.number().min(0).default(0),
      learningRate: z.number().positive().optional(),
      batchSize: z.number().int().positive().optional(),
      /** Wire encoding of plain updates (uint32 is secure aggregation's own, chosen by `secureAggregation`). */
      encoding: encodingSchema.exclude(['uint32']).default('float32'),
      allowedEncodings: z.array(encodingSchema.exclude(['uint32'])).default(['float32', 'float16', 'int8']),
      /** Absolute ceiling of an update's L2 norm: above it the update is refused. */
      normBound: z.number().positive().default(1000),
      /**
       * Adaptive clipping: an update whose norm exceeds clipMultiple × the round's (lower) median norm is
       * scaled down to that norm before aggregation (audited `update_clipped`); null turns it off.
       */
      clipMultiple: z.number().min(1).nullable().default(2),
      /** No site holds more than this share of a round's total weight (with n sites, at least 1/n applies). */
      maxSiteShare: z.number().gt(0).max(1).default(0.5),
      /**
       * A site without a declared `examples` is weighted by its claim at enrolment (its first aggregated
       * round); after that its weight may grow by at most this factor per round.
       */
      weightGrowth: z.number().min(1).default(1.5),
      /** An upload with no chunk for this long is dropped and its spool removed. */
      uploadIdleMs: z.number().int().min(100).default(60_000),
      /** Uploads (update:begin) a site may start per round; each nonce is kept for the round. */
      maxUploadsPerSite: z.number().int().min(1).default(16),
      /** Spool bytes one site may hold on disk (accepted + in flight); default two updates' worth. */
      siteSpoolQuotaBytes: z.number().int().positive().optional(),
      /** Quorum: fewest accepted updates that make a round. */
      minSites: z.number().int().min(1).default(1),
      timeoutMs: z.number().int().positive().default(600_000),
      chunkBytes: z
        .number()
        .int()
        .min(1024)
        .max(4 * 1024 * 1024)
        .default(1024 * 1024),
      /**
       * The aggregation strategy, by its registered name (strategies/registry.ts): fedavg, fedprox, median,
       * trimmed-mean, or one a plugin registered.
       */
      aggregation: z.string().min(1).default('fedavg'),
      /** The strategy's own options, validated by it (fedprox: mu; trimmed-mean: trimFraction). */
      aggregationOptions: z.record(z.string(), z.unknown()).default({}),
      /**
       * Server learning rate η (FedOpt, Reddi et al. 2021): global += η · aggregate(deltas). 1 is plain FedAvg;
       * η ≈ the number of sites recovers, on IID shards, roughly the progress per epoch of centralized SGD
       * (each site walks only its own shard per epoch; the average of K such walks is ~1/K of the way).
       */
      serverLearningRate: z.number().positive().max(100).default(1),
      /** Trimmed mean's β when `aggregationOptions.trimFraction` is absent. */
      trimFraction: z.number().min(0).max(0.49).default(0.2),
      dp: z.strictObject({ clipNorm: z.number().positive(), noiseMultiplier: z.number().min(0) }).optional(),
      seed: z.number().int().default(0),
      /**
       * Double-masked updates: the coordinator learns only the sum (see secagg.ts for what holds). A masked sum
       * gives only a weighted mean, so only a linear strategy (fedavg, fedprox) is admitted with it.
       */
      secureAggregation: z.boolean().default(false),
      /** Fixed-point scale of masked values: round(numExamples·delta·scale) must stay within ±2^31 summed. */
      secaggScale: z.number().positive().default(1024),
      /**
       * Shamir threshold t of secure aggregation (default ⌊n/2⌋+1 of the round's n participants; 2 ≤ t ≤ n,
       * checked when the round's participants are known). Privacy holds against the coordinator with fewer
       * than t colluding sites; unmasking needs at least t surviving sites (see secagg.ts).
       */
      secaggThreshold: z.number().int().min(2).optional(),
    })
    .superRefine(checkStrategy)
    .prefault({}),
  /** Run rounds by itself: `rounds` rounds, each once `minOnline` sites are connected. */
  schedule: z
    .strictObject({ rounds: z.number().int().min(1), minOnline: z.number().int().min(1).default(1) })
    .optional(),
  /** Keep this many global checkpoints (older ones are deleted). */
  keepCheckpoints: z.number().int().min(1).default(3),
});
export type CoordinatorConfig = z.infer<typeof coordinatorConfigSchema>;
export type CoordinatorConfigInput = z.input<typeof coordinatorConfigSchema>;

/**
 * The round's strategy: registered (else the registered names are listed), its options valid, and linear
 * when the round is securely aggregated (the coordinator sees only the masked sum, which gives a weighted
 * mean: a median or trimmed mean cannot be computed from it).
 */
function checkStrategy(
  round: {
    aggregation: string;
    aggregationOptions: Record<string, unknown>;
    mu: number;
    trimFraction: number;
    secureAggregation: boolean;
  },
  ctx: z.RefinementCtx,
): void {
  if (!strategies.has(round.aggregation)) {
    ctx.addIssue({ code: 'custom', path: ['aggregation'], message: strategies.unknown(round.aggregation) });
    return;
  }
  const strategy = strategies.get(round.aggregation);
  const options = strategies.parseOptions(strategy, round, round.aggregationOptions);
  if (!options.success)
    for (const issue of options.error.issues)
      ctx.addIssue({
        code: 'custom',
        path: ['aggregationOptions', ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
        message: `${round.aggregation}: ${issue.message}`,
      });
  if (round.secureAggregation && !strategy.linear) {
    const linear = strategies.describe().filter((s) => s.linear);
    ctx.addIssue({
      code: 'custom',
      path: ['aggregation'],
      message:
        `round.secureAggregation admits only linear strategies, and round.aggregation "${round.aggregation}" is not ` +
        `linear (the coordinator sees only the masked sum, a weighted mean): use ${linear.map((s) => s.name).join(' or ')}, ` +
        'or set round.secureAggregation: false',
    });
  }
}
