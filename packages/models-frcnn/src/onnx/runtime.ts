/**
 * Faster R-CNN on ONNX Runtime (onnxruntime-node): the exported network graphs run in ORT (CPU provider,
 * CUDA when installed); the transform, anchors, proposal selection, level mapping and postprocess are the
 * same TypeScript functions the tfjs detector uses, so both engines decide identically.
 *
 * Files: `<name>.onnx` (features + RPN head, with the detector settings in its metadata) and
 * `<name>.box_head.onnx` beside it. The RoiAlign graph has no weights and is built when loading.
 */
import { readFile } from 'node:fs/promises';
import { type Detection, type DetectorImage, FedcxrError, type ModelCard, tf } from '@fedcxr/core';
import * as ort from 'onnxruntime-node';
import type { FasterRcnnSettings } from '../detector/faster-rcnn.js';
import { postprocessDetections } from '../detector/roi-heads.js';
import { anchorsForBatch, selectProposals } from '../detector/rpn.js';
import { batchImages, resizeBoxes } from '../detector/transform.js';
import { mapBoxLevels } from '../ops/roi-align.js';
import { exportRoiAlignGraph, FPN_LEVELS } from './export.js';

export const ONNX_SETTINGS_KEY = 'fedcxr.settings';
export const ONNX_CARD_KEY = 'fedcxr.card';

/** Reads the metadata_props (key → value) of an ONNX model without a protobuf runtime. */
export function readOnnxMetadata(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let offset = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (offset >= bytes.length) throw new FedcxrError('invalid_onnx', 'truncated ONNX file');
      const b = bytes[offset++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  const decoder = new TextDecoder();
  while (offset < bytes.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    if (wire === 0) varint();
    else if (wire === 1) offset += 8;
    else if (wire === 5) offset += 4;
    else if (wire === 2) {
      const length = Number(varint());
      const start = offset;
      offset += length;
      if (field === 14) {
        // StringStringEntryProto { key = 1; value = 2; }
        let inner = start;
        let k = '';
        let v = '';
        while (inner < start + length) {
          const tag = bytes[inner++];
          let len = 0;
          let shift = 0;
          for (;;) {
            const b = bytes[inner++];
            len |= (b & 0x7f) << shift;
            if ((b & 0x80) === 0) break;
            shift += 7;
          }
          const text = decoder.decode(bytes.subarray(inner, inner + len));
          inner += len;
          if (tag >> 3 === 1) k = text;
          else if (tag >> 3 === 2) v = text;
        }
        out[k] = v;
      }
    } else throw new FedcxrError('invalid_onnx', `unexpected protobuf wire type ${wire}`);
  }
  return out;
}

export type NetworkOutputs = ort.InferenceSession.OnnxValueMapType;

/** The padded batch's size and each image's resized and original [height, width]. */
export interface BatchMeta {
  batchHeight: number;
  batchWidth: number;
  imageSizes: [number, number][];
  originalSizes: [number, number][];
}

export function rpnHeadPath(featuresPath: string): string {
  return `${featuresPath.replace(/\.onnx$/i, '')}.rpn_head.onnx`;
}

export function boxHeadPath(featuresPath: string): string {
  return `${featuresPath.replace(/\.onnx$/i, '')}.box_head.onnx`;
}

export interface OnnxLoadOptions {
  /** ORT execution providers in order of preference (default: cpu). */
  executionProviders?: string[];
  intraOpThreads?: number;
}

export class OnnxFasterRcnn {
  private constructor(
    readonly settings: FasterRcnnSettings,
    readonly card: Partial<ModelCard>,
    private readonly features: ort.InferenceSession,
    private readonly boxHead: ort.InferenceSession,
    private readonly roiAlign: ort.InferenceSession,
    private readonly rpnHeadSession: ort.InferenceSession | null,
  ) {}

  get classes(): readonly string[] {
    return this.settings.classes;
  }

  static async load(path: string, options: OnnxLoadOptions = {}): Promise<OnnxFasterRcnn> {
    let features: Uint8Array;
    let boxHead: Uint8Array;
    try {
      features = await readFile(path);
      boxHead = await readFile(boxHeadPath(path));
    } catch (error) {
      throw new FedcxrError('model_unreadable', `cannot read the exported model: ${(error as Error).message}`, {
        file: path,
      });
    }
    // The standalone RPN head is only needed for AblationCAM; older exports may lack it.
    const rpnHead = await readFile(rpnHeadPath(path)).catch(() => undefined);
    const metadata = readOnnxMetadata(features);
    if (!metadata[ONNX_SETTINGS_KEY]) {
      throw new FedcxrError('invalid_onnx', 'not a fedcxr export (no detector settings in its metadata)', {
        file: path,
      });
    }
    const settings = JSON.parse(metadata[ONNX_SETTINGS_KEY]) as FasterRcnnSettings;
    const card = metadata[ONNX_CARD_KEY] ? (JSON.parse(metadata[ONNX_CARD_KEY]) as Partial<ModelCard>) : {};
    return OnnxFasterRcnn.fromGraphs({ features, boxHead, rpnHead }, settings, card, options);
  }

  /** Builds the runtime from graphs in memory (e.g. exported on the fly from a model directory). */
  static async fromGraphs(
    graphs: { features: Uint8Array; boxHead: Uint8Array; rpnHead?: Uint8Array },
    settings: FasterRcnnSettings,
    card: Partial<ModelCard> = {},
    options: OnnxLoadOptions = {},
  ): Promise<OnnxFasterRcnn> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: options.executionProviders ?? ['cpu'],
      graphOptimizationLevel: 'all',
    };
    if (options.intraOpThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpThreads;
    const [features, boxHead, roiAlign, rpnHead] = await Promise.all([
      ort.InferenceSession.create(graphs.features, sessionOptions),
      ort.InferenceSession.create(graphs.boxHead, sessionOptions),
      ort.InferenceSession.create(
        exportRoiAlignGraph(settings.roi.outputSize, settings.roi.samplingRatio),
        sessionOptions,
      ),
      graphs.rpnHead ? ort.InferenceSession.create(graphs.rpnHead, sessionOptions) : Promise.resolve(null),
    ]);
    return new OnnxFasterRcnn(settings, card, features, boxHead, roiAlign, rpnHead);
  }

  /** Detections in each original image's pixels, exactly as the tfjs detector's predict. */
  async predict(images: readonly DetectorImage[]): Promise<Detection[][]> {
    const { outputs, meta } = await this.forward(images);
    return this.detect(outputs, meta);
  }

  /** Transform + network: FPN features and RPN head outputs (NCHW) for a batch, and its geometry. */
  async forward(images: readonly DetectorImage[]): Promise<{ outputs: NetworkOutputs; meta: BatchMeta }> {
    const batch = batchImages(images, this.settings.transform);
    const [n, batchHeight, batchWidth] = batch.tensor.shape;
    // A host loop: tfjs' cpu transpose takes seconds for one 512² image.
    const hwc = batch.tensor.dataSync() as Float32Array;
    batch.tensor.dispose();
    const nchw = new Float32Array(hwc.length);
    const plane = batchHeight * batchWidth;
    for (let image = 0; image < n; image++) {
      for (let p = 0; p < plane; p++) {
        const from = (image * plane + p) * 3;
        for (let c = 0; c < 3; c++) nchw[(image * 3 + c) * plane + p] = hwc[from + c];
      }
    }
    const outputs = await this.features.run({
      images: new ort.Tensor('float32', nchw, [n, 3, batchHeight, batchWidth]),
    });
    return {
      outputs,
      meta: { batchHeight, batchWidth, imageSizes: batch.imageSizes, originalSizes: batch.originalSizes },
    };
  }

  /** The RPN head alone on given FPN levels (`feature_<level>`, NCHW); needs the exported RPN head graph. */
  async rpnHead(features: NetworkOutputs): Promise<NetworkOutputs> {
    if (!this.rpnHeadSession) {
      throw new FedcxrError(
        'onnx_rpn_head_missing',
        'this export has no standalone RPN head graph (re-export the model)',
      );
    }
    return this.rpnHeadSession.run(features);
  }

  /** Proposals, RoI pooling, box head and postprocess on network outputs, as the tfjs detector does. */
  async detect(out: NetworkOutputs, meta: BatchMeta): Promise<Detection[][]> {
    const { batchHeight, batchWidth } = meta;
    const n = meta.imageSizes.length;
    const levelNames = FPN_LEVELS.slice(0, this.settings.rpn.anchorSizes.length);
    const featureSizes = levelNames.map(
      (name) => [out[`feature_${name}`].dims[2], out[`feature_${name}`].dims[3]] as [number, number],
    );
    const { anchors, perLevel } = anchorsForBatch(this.settings.rpn, [batchHeight, batchWidth], featureSizes);
    const total = anchors.length / 4;
    // ORT gives NCHW [N, A, h, w] and [N, 4A, h, w]; the selection expects (level, y, x, anchor) order.
    const objectness = new Float32Array(n * total);
    const deltas = new Float32Array(n * total * 4);
    let levelStart = 0;
    levelNames.forEach((name, level) => {
      const logits = out[`objectness_${name}`].data as Float32Array;
      const boxes = out[`deltas_${name}`].data as Float32Array;
      const [h, w] = featureSizes[level];
      const a = perLevel[level] / (h * w);
      for (let image = 0; image < n; image++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            for (let k = 0; k < a; k++) {
              const index = image * total + levelStart + (y * w + x) * a + k;
              objectness[index] = logits[((image * a + k) * h + y) * w + x];
              for (let c = 0; c < 4; c++) deltas[index * 4 + c] = boxes[((image * 4 * a + k * 4 + c) * h + y) * w + x];
            }
          }
        }
      }
      levelStart += perLevel[level];
    });
    const proposals = selectProposals(objectness, deltas, anchors, perLevel, meta.imageSizes, this.settings.rpn, false);

    const pooledNames = this.settings.roi.featureNames;
    // The classifier's slots: '__background__' and the foreground classes (older exports' settings.numClasses
    // counted the background too, so the names are the one reading both agree on).
    const k = this.settings.classes.length;
    const results: Detection[][] = [];
    for (let image = 0; image < n; image++) {
      const boxes = proposals[image].boxes;
      const count = boxes.length / 4;
      const size = this.settings.roi.outputSize;
      const { pooled, channels } = await this.pool(out, pooledNames, boxes, image, meta.imageSizes);
      const head = await this.boxHead.run({ pooled: new ort.Tensor('float32', pooled, [count, channels, size, size]) });
      const logits = head.class_logits.data as Float32Array;
      const probabilities = softmaxRows(logits, count, k);
      const detections = postprocessDetections(
        probabilities,
        head.box_regression.data as Float32Array,
        boxes,
        k,
        meta.imageSizes[image],
        this.settings.roi,
      );
      const original = resizeBoxes(detections.boxes, meta.imageSizes[image], meta.originalSizes[image]);
      results.push(
        Array.from(detections.scores, (score, i) => ({
          box: [original[i * 4], original[i * 4 + 1], original[i * 4 + 2], original[i * 4 + 3]] as [
            number,
            number,
            number,
            number,
          ],
          label: detections.labels[i],
          score,
        })),
      );
    }
    return results;
  }

  /** torchvision's MultiScaleRoIAlign through ORT's RoiAlign, one level at a time. */
  private async pool(
    out: ort.InferenceSession.OnnxValueMapType,
    names: readonly string[],
    boxes: Float32Array,
    image: number,
    imageSizes: readonly (readonly [number, number])[],
  ): Promise<{ pooled: Float32Array; channels: number }> {
    const count = boxes.length / 4;
    const maps = names.map((name) => out[`feature_${name}`]);
    const channels = maps[0].dims[1];
    const maxHeight = Math.max(...imageSizes.map((s) => s[0]));
    const scales = maps.map((m) => 2 ** Math.round(Math.log2(Math.fround(m.dims[2] / maxHeight))));
    const kMin = Math.trunc(-Math.log2(scales[0]));
    const kMax = Math.trunc(-Math.log2(scales[scales.length - 1]));
    const levels = maps.length === 1 ? new Int32Array(count) : mapBoxLevels(boxes, kMin, kMax);
    const binSize = channels * this.settings.roi.outputSize ** 2;
    const pooled = new Float32Array(count * binSize);
    for (let level = 0; level < maps.length; level++) {
      const members: number[] = [];
      for (let i = 0; i < count; i++) if (levels[i] === level) members.push(i);
      if (members.length === 0) continue;
      const map = maps[level];
      const [, c, h, w] = map.dims;
      const single = (map.data as Float32Array).subarray(image * c * h * w, (image + 1) * c * h * w);
      const rois = new Float32Array(members.length * 4);
      members.forEach((roi, m) => {
        for (let j = 0; j < 4; j++) rois[m * 4 + j] = Math.fround(boxes[roi * 4 + j] * scales[level]);
      });
      const result = await this.roiAlign.run({
        feature: new ort.Tensor('float32', single, [1, c, h, w]),
        rois: new ort.Tensor('float32', rois, [members.length, 4]),
        batch_indices: new ort.Tensor('int64', new BigInt64Array(members.length), [members.length]),
      });
      const data = result.pooled.data as Float32Array;
      members.forEach((roi, m) => {
        pooled.set(data.subarray(m * binSize, (m + 1) * binSize), roi * binSize);
      });
    }
    return { pooled, channels };
  }

  async dispose(): Promise<void> {
    await Promise.all([
      this.features.release(),
      this.boxHead.release(),
      this.roiAlign.release(),
      this.rpnHeadSession?.release(),
    ]);
  }
}

/** Row-wise softmax in float32, as torch.nn.functional.softmax. */
function softmaxRows(logits: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(rows * columns);
  for (let r = 0; r < rows; r++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < columns; c++) max = Math.max(max, logits[r * columns + c]);
    let sum = 0;
    for (let c = 0; c < columns; c++) {
      const e = Math.fround(Math.exp(logits[r * columns + c] - max));
      out[r * columns + c] = e;
      sum += e;
    }
    for (let c = 0; c < columns; c++) out[r * columns + c] = Math.fround(out[r * columns + c] / sum);
  }
  return out;
}
