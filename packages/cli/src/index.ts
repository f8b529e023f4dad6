export const VERSION = '0.1.0';
export {
  type ConvertedItem,
  type ConvertSettings,
  convertItem,
  type ImportOptions,
  type ImportSummary,
  importDataset,
} from './dataset/import.js';
export { type SplitFileOptions, type SplitFileResult, splitAnnotationsFile } from './dataset/split.js';
export { type CommandRun, type InvokeOptions, invokeCommand } from './invoke.js';
