import type { Command } from 'commander';
import { registerDatasetCommands } from './dataset.js';
import { registerDemoCommands } from './demo.js';
import { registerDicomCommands } from './dicom.js';
import { registerDoctorCommands } from './doctor.js';
import { registerEngineCommands } from './engine.js';
import { registerEvalCommands } from './eval.js';
import { registerExplainCommands } from './explain.js';
import { registerExportCommands } from './export.js';
import { registerFedCommands } from './fed.js';
import { registerPredictCommands } from './predict.js';
import { registerTrainCommands } from './train.js';
import { registerWeightsCommands } from './weights.js';

/** Each command group registers itself here (one line per group; only implemented commands appear). */
export const commandGroups: ((program: Command) => void)[] = [];
commandGroups.push(registerEvalCommands);
commandGroups.push(registerDicomCommands);
commandGroups.push(registerDatasetCommands);
commandGroups.push(registerWeightsCommands);
commandGroups.push(registerDoctorCommands);
commandGroups.push(registerEngineCommands);
commandGroups.push(registerTrainCommands);
commandGroups.push(registerFedCommands);
commandGroups.push(registerExportCommands);
commandGroups.push(registerExplainCommands);
commandGroups.push(registerPredictCommands);
commandGroups.push(registerDemoCommands);
