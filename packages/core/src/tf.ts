/**
 * The only import of TensorFlow.js in the project: every package takes `tf` from here, so one engine
 * (one backend, one set of registered kernels and gradients) serves them all. The `@tensorflow/tfjs`
 * Node bundle registers the gradients; `@tensorflow/tfjs-core` alone would not.
 */
import * as tf from '@tensorflow/tfjs';

// Production mode: tfjs stays quiet on stderr (its "install tfjs-node" hint does not apply: the engine picks
// the backend and `cxr doctor` explains the choice), and debug-only checks stay off.
tf.env().set('PROD', true);

export type {
  DataId,
  DataType,
  KernelBackend,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  Rank,
  Scalar,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  TensorInfo,
  Variable,
} from '@tensorflow/tfjs';
export { tf };
