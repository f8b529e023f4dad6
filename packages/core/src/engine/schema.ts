import { z } from 'zod';

/** The tfjs backends the engine can run on; `auto` picks the fastest that works here. */
export const backendNames = ['torch', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof backendNames)[number];
export type BackendChoice = BackendName | 'auto';

/** The `engine` section of every config that trains or infers (embed it: `engine: engineConfigSchema`). */
export const engineConfigSchema = z
  .object({
    backend: z.enum(['auto', ...backendNames]).default('auto'),
    /**
     * CPU threads: XNNPACK's pool on wasm, ATen's intra-op threads on torch; default: every core the OS offers.
     */
    threads: z.number().int().min(1).max(256).optional(),
    /** The torch backend's device: `auto` (CUDA when libtorch sees a GPU, else the CPU), `cpu`, `cuda`, `cuda:N`. */
    device: z
      .string()
      .regex(/^(auto|cpu|cuda(:\d+)?)$/, 'must be auto, cpu, cuda or cuda:N')
      .default('auto'),
  })
  .strict()
  .default({ backend: 'auto', device: 'auto' });

export type EngineConfig = z.input<typeof engineConfigSchema>;
