// Stands in for onnxruntime-node in the GPU bundle (bench/gpu/bundle.sh): the GPU machine has no node_modules
// and this bench never runs an ONNX session; any use says so instead of failing at import.
const missing = (): never => {
  throw new Error('onnxruntime-node is not part of the bench/gpu bundle');
};
export const InferenceSession = { create: missing };
export const Tensor = missing;
export const env = {};
