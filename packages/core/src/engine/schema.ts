import { z } from 'zod';

/** The tfjs backends the engine can run on; `auto` picks the fastest that works here. */
export const backendNames = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof backendNames)[number];
export type BackendChoice = BackendName | 'auto';

/** The `engine` section of every config that trains or infers (embed it: `engine: engineConfigSchema`). */
export const engineConfigSchema = z
  .object({
    backend: z.enum(['auto', ...backendNames]).default('auto'),
    /** Worker threads for the wasm backend (XNNPACK's pool); default: every core the OS offers. */
    threads: z.number().int().min(1).max(64).optional(),
  })
  .strict()
  .default({ backend: 'auto' });

export type EngineConfig = z.input<typeof engineConfigSchema>;
