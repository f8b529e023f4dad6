/**
 * Kernels fedcxr adds to tfjs, by name; each backend that can run one registers it (torch: ./torch/kernels,
 * wasm: ./wasm-training-kernels.ts). Models test for a kernel with tf.getKernel and fall back otherwise.
 *
 * `FedcxrCsrMatMul`: a sparse matrix in CSR form (inputs rowOffsets int32 [rows + 1], columns int32, values
 * float32) times a dense [R, C] float32 matrix, giving [rows, C].
 */
export const CSR_MATMUL = 'FedcxrCsrMatMul';
