/**
 * Tensors on the host, independent of any engine: what checkpoints, federated updates and weight
 * files carry. Names follow torchvision's state_dict keys where a layer has a torchvision twin.
 */
export type HostDType = 'float32' | 'float16' | 'int32' | 'int64' | 'uint8' | 'bool';

export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  /** float16/int64 are widened on load (float16 → Float32Array, int64 → Float64Array when exact). */
  data: Float32Array | Int32Array | Uint8Array | Float64Array;
}

export type NamedTensors = Map<string, HostTensor>;

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}
