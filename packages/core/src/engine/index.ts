export {
  adapterName,
  type BackendProbe,
  type EngineInfo,
  type EngineProbe,
  type EnginePurpose,
  engineInfo,
  initEngine,
  probeBackends,
  type TorchProbe,
} from './engine.js';
export { CSR_MATMUL } from './kernel-names.js';
export type { GpuAdapterInfo, OnnxRuntimeInfo } from './optional-modules.js';
export {
  type BackendChoice,
  type BackendName,
  backendNames,
  type EngineConfig,
  engineConfigSchema,
} from './schema.js';
export { type LoadedTorch, loadTorch, nativeDirectory, type TorchInfo } from './torch/addon.js';
export type { RegisteredKernel } from './wasm-training-kernels.js';
