/**
 * The federated wire protocol: every message the coordinator and the sites exchange, as zod schemas, in
 * this one file. Both ends parse every message they receive; the site agent also parses every message it
 * SENDS (strict schemas), so nothing but tensors and aggregate scalars can leave a hospital: the only
 * strings a site may send are its id, hex hashes/nonces, tensor names the coordinator gave it, metric
 * names from a restricted alphabet, enum values, and (secure aggregation only) fixed-length hex key
 * material: per-round public keys, Shamir shares of per-round random secrets, and those shares encrypted.
 *
 * Transport: socket.io (WebSocket), binary chunks as socket.io attachments, every request acknowledged.
 * Global model: the coordinator streams the canonical checkpoint bytes (see model-file.ts) in chunks; the
 * site verifies their sha256 against `modelHash` before using them. Updates: the site announces a manifest
 * (`update:begin`), streams the encoded tensor bytes (`update:chunk`), and closes (`update:end`) with the
 * sha256 of everything it streamed.
 */
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

/** Hard limits both ends enforce (a coordinator config may lower them, never raise the chunk limit). */
export const LIMITS = {
  maxChunkBytes: 4 * 1024 * 1024,
  defaultChunkBytes: 1024 * 1024,
  maxTensors: 20_000,
  maxRank: 8,
  maxMetrics: 64,
  maxExamples: 1_000_000_000,
  /** socket.io frame limit = chunk + this much for the JSON envelope. */
  envelopeBytes: 64 * 1024,
} as const;

export const siteIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'site id: 1-64 of [A-Za-z0-9_.-]');
export const sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256');
/** A random per-update nonce chosen by the site; a coordinator never accepts the same one twice. */
export const nonceSchema = z.string().regex(/^[0-9a-f]{32}$/, '16 random bytes in hex');
/** Tensor names look like torchvision state_dict keys; the coordinator also checks they are its own. */
export const tensorNameSchema = z.string().regex(/^[A-Za-z0-9_.:/-]{1,200}$/, 'tensor name');
/** Metric names: short, lowercase-ish identifiers (`loss`, `ap50`, `ar@100`), never free text. */
export const metricNameSchema = z.string().regex(/^[A-Za-z][A-Za-z0-9_.@-]{0,47}$/, 'metric name');
export const roundSchema = z.number().int().min(1).max(1_000_000);
export const shapeSchema = z
  .array(
    z
      .number()
      .int()
      .min(0)
      .max(1 << 30),
  )
  .max(LIMITS.maxRank);
export const finiteSchema = z.number().finite();

export const metricsSchema = z
  .record(metricNameSchema, finiteSchema)
  .refine((m) => Object.keys(m).length <= LIMITS.maxMetrics, `at most ${LIMITS.maxMetrics} metrics`);
export type Metrics = z.infer<typeof metricsSchema>;

/**
 * How update tensors travel: float32, float16 (IEEE half), int8 with a per-tensor scale (x ≈ q·scale), or
 * uint32 = fixed-point values under pairwise masks (secure-aggregation rounds only).
 */
export const encodingSchema = z.enum(['float32', 'float16', 'int8', 'uint32']);
export type Encoding = z.infer<typeof encodingSchema>;

export const chunkDataSchema = z
  .custom<Uint8Array>((value) => value instanceof Uint8Array, 'binary data')
  .refine((b) => b.byteLength > 0 && b.byteLength <= LIMITS.maxChunkBytes, 'chunk of 1..4 MiB');

// ---------------------------------------------------------------------------------------------------------
// Handshake (socket.io `auth` payload, site → coordinator)

export const siteAuthSchema = z.strictObject({
  protocol: z.literal(PROTOCOL_VERSION),
  role: z.literal('site'),
  siteId: siteIdSchema,
  token: z.string().min(16).max(256),
});
export type SiteAuth = z.infer<typeof siteAuthSchema>;

// ---------------------------------------------------------------------------------------------------------
// Coordinator → site

export const tensorSpecSchema = z.strictObject({ name: tensorNameSchema, shape: shapeSchema });
export type TensorSpec = z.infer<typeof tensorSpecSchema>;

export const dpPlanSchema = z.strictObject({
  /** L2 clip of the whole update (delta) before noise. */
  clipNorm: z.number().positive(),
  /** Gaussian noise std = noiseMultiplier · clipNorm (added by the site: local DP). */
  noiseMultiplier: z.number().min(0),
});

export const roundPlanSchema = z.strictObject({
  protocol: z.literal(PROTOCOL_VERSION),
  round: roundSchema,
  task: z.enum(['train', 'evaluate']),
  /** sha256 of the global model's canonical bytes; the site must verify it. */
  modelHash: sha256HexSchema,
  modelBytes: z.number().int().positive(),
  chunkBytes: z.number().int().positive().max(LIMITS.maxChunkBytes),
  tensors: z.array(tensorSpecSchema).max(LIMITS.maxTensors),
  epochs: z.number().int().min(1).max(1000),
  /** FedProx proximal coefficient μ (0 = FedAvg local objective). */
  mu: z.number().min(0),
  learningRate: z.number().positive().optional(),
  batchSize: z.number().int().positive().optional(),
  seed: z.number().int(),
  encoding: encodingSchema,
  /** The coordinator refuses updates whose L2 norm exceeds this. */
  normBound: z.number().positive(),
  /** Wall-clock deadline (ms since epoch) after which the update is refused as late. */
  deadline: z.number().int(),
  dp: dpPlanSchema.optional(),
  secureAggregation: z.boolean().default(false),
  /** Secure aggregation: sites send round(numExamples·delta·scale) mod 2^32 under masks. */
  secaggScale: z.number().positive().optional(),
});
export type RoundPlan = z.infer<typeof roundPlanSchema>;

export const modelChunkRequestSchema = z.strictObject({
  modelHash: sha256HexSchema,
  index: z.number().int().min(0).max(1_000_000),
});
export const modelChunkReplySchema = z.union([
  z.strictObject({ ok: z.literal(true), index: z.number().int().min(0), data: chunkDataSchema }),
  z.strictObject({ ok: z.literal(false), error: z.string().max(500) }),
]);

/** The coordinator's answer to every site request. */
export const ackSchema = z.union([
  z.strictObject({ ok: z.literal(true) }),
  z.strictObject({ ok: z.literal(false), code: z.string().max(64), error: z.string().max(500) }),
]);
export type Ack = z.infer<typeof ackSchema>;

export const roundClosedSchema = z.strictObject({
  round: roundSchema,
  outcome: z.enum(['aggregated', 'failed']),
  modelHash: sha256HexSchema.optional(),
});

// ---------------------------------------------------------------------------------------------------------
// Site → coordinator (all strict: unknown keys are an error, so a bug cannot smuggle data out)

export const updateTensorSchema = z.strictObject({
  name: tensorNameSchema,
  shape: shapeSchema,
  encoding: encodingSchema,
  /** int8 only: dequantized value = q · scale. */
  scale: z.number().finite().positive().optional(),
});
export type UpdateTensor = z.infer<typeof updateTensorSchema>;

export const evaluationSchema = z.strictObject({
  numExamples: z.number().int().min(0).max(LIMITS.maxExamples),
  metrics: metricsSchema,
});
export type Evaluation = z.infer<typeof evaluationSchema>;

export const updateBeginSchema = z.strictObject({
  round: roundSchema,
  nonce: nonceSchema,
  /** The global model this update was trained from. */
  baseModelHash: sha256HexSchema,
  kind: z.literal('delta'),
  numExamples: z.number().int().min(1).max(LIMITS.maxExamples),
  /** Local training metrics (aggregate scalars). */
  metrics: metricsSchema,
  /** The site's evaluation of the global model it received (validation split, aggregate only). */
  globalEvaluation: evaluationSchema.optional(),
  tensors: z.array(updateTensorSchema).max(LIMITS.maxTensors),
  byteLength: z.number().int().min(0),
  /** sha256 of all chunk bytes in order. */
  sha256: sha256HexSchema,
});
export type UpdateBegin = z.infer<typeof updateBeginSchema>;

export const updateChunkSchema = z.strictObject({
  round: roundSchema,
  nonce: nonceSchema,
  index: z.number().int().min(0),
  data: chunkDataSchema,
});
export type UpdateChunk = z.infer<typeof updateChunkSchema>;

export const updateEndSchema = z.strictObject({ round: roundSchema, nonce: nonceSchema });
export type UpdateEnd = z.infer<typeof updateEndSchema>;

export const evaluationReportSchema = z.strictObject({
  round: roundSchema,
  modelHash: sha256HexSchema,
  evaluation: evaluationSchema,
});
export type EvaluationReport = z.infer<typeof evaluationReportSchema>;

export const siteStatusSchema = z.strictObject({
  state: z.enum(['idle', 'downloading', 'evaluating', 'training', 'uploading']),
  round: z.number().int().min(0),
});
export type SiteStatus = z.infer<typeof siteStatusSchema>;

// Secure aggregation (see secagg.ts): per round a masking key and a share-encryption key per site, encrypted
// Shamir shares relayed site → coordinator → site, and the survivors' share reveals at unmasking.
export const publicKeySchema = z.string().regex(/^[0-9a-f]{64}$/, 'a raw X25519 public key in hex');
export const secaggKeySchema = z.strictObject({
  round: roundSchema,
  publicKey: publicKeySchema,
  shareKey: publicKeySchema,
});
export const secaggPeersSchema = z
  .strictObject({
    round: roundSchema,
    /** Shares needed to rebuild a secret (2 ≤ threshold ≤ peers). */
    threshold: z.number().int().min(2),
    peers: z
      .array(z.strictObject({ siteId: siteIdSchema, publicKey: publicKeySchema, shareKey: publicKeySchema }))
      .max(10_000),
  })
  .refine((p) => p.threshold <= p.peers.length, 'threshold above the number of peers');
/** One share pair (of b and of the masking key), AES-256-GCM: iv ‖ ciphertext ‖ tag, fixed length. */
export const shareCiphertextSchema = z.string().regex(/^[0-9a-f]{320}$/, 'an encrypted share pair (160 bytes, hex)');
/** Site → coordinator: its encrypted shares, one per other participant. */
export const secaggSharesSchema = z.strictObject({
  round: roundSchema,
  shares: z.array(z.strictObject({ to: siteIdSchema, ciphertext: shareCiphertextSchema })).max(10_000),
});
/** Coordinator → site: the shares the other participants encrypted for it. */
export const secaggRelaySchema = z.strictObject({
  round: roundSchema,
  shares: z.array(z.strictObject({ from: siteIdSchema, ciphertext: shareCiphertextSchema })).max(10_000),
});
/** Coordinator → survivor: who delivered (reveal shares of their self-mask seed) and who dropped (of their key). */
export const secaggRevealRequestSchema = z.strictObject({
  round: roundSchema,
  survivors: z.array(siteIdSchema).max(10_000),
  dropped: z.array(siteIdSchema).max(10_000),
});
/** Why a site refuses an unmasking request (the only words its refusal may carry). */
export const secaggRefusalSchema = z.enum([
  'unknown_round',
  'not_ready',
  'bad_view',
  'self_dropped',
  'too_few_survivors',
  'contradiction',
]);
export type SecAggRefusalReason = z.infer<typeof secaggRefusalSchema>;
/** A survivor's answer: one Shamir share per participant, of exactly one of its two secrets, or a refusal. */
export const secaggRevealReplySchema = z.union([
  z.strictObject({
    round: roundSchema,
    shares: z
      .array(
        z.strictObject({
          siteId: siteIdSchema,
          kind: z.enum(['self', 'pairwise']),
          share: z.string().regex(/^[0-9a-f]{132}$/, 'a Shamir share (66 bytes, hex)'),
        }),
      )
      .max(10_000),
  }),
  z.strictObject({
    round: roundSchema,
    refused: secaggRefusalSchema,
  }),
]);
export type SecAggRevealReply = z.infer<typeof secaggRevealReplySchema>;

/** Every event a site may emit, with its payload schema: the site agent refuses to send anything else. */
export const siteOutbound = {
  'model:chunk': modelChunkRequestSchema,
  'update:begin': updateBeginSchema,
  'update:chunk': updateChunkSchema,
  'update:end': updateEndSchema,
  'eval:report': evaluationReportSchema,
  'site:status': siteStatusSchema,
  'secagg:key': secaggKeySchema,
  'secagg:shares': secaggSharesSchema,
} as const;
export type SiteEvent = keyof typeof siteOutbound;

/** Events the coordinator pushes to sites. */
export const coordinatorOutbound = {
  'round:plan': roundPlanSchema,
  'round:closed': roundClosedSchema,
  'secagg:peers': secaggPeersSchema,
  'secagg:shares': secaggRelaySchema,
  'secagg:reveal': secaggRevealRequestSchema,
} as const;
