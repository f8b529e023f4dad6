export const VERSION = '0.1.0';

export { coordinatorRequest } from './admin-client.js';
export { type AggregationRule, robustAggregate, serverStep } from './aggregation.js';
export { type AuditEntry, AuditLog, verifyAuditLog } from './audit.js';
export { type CoordinatorConfig, type CoordinatorConfigInput, coordinatorConfigSchema } from './config.js';
export {
  type AcceptedUpdate,
  Coordinator,
  type CoordinatorOptions,
  type DashboardSnapshot,
  type RoundSummary,
  randomToken,
} from './coordinator.js';
export { dashboardHtml } from './dashboard.js';
export { type FederationRun, type FederationRunOptions, runSimulatedFederation } from './federation-run.js';
export { type IngestResult, UpdateIngest, UpdateRejected, validateManifest } from './ingest.js';
export { type SimulationOptions, type SimulationReport, simulate } from './simulate.js';
export {
  type DetectionScores,
  type DetectorSimulationOptions,
  type DetectorSimulationReport,
  simulateDetector,
} from './simulate-detector.js';
export { renderSimulationReport } from './simulation-report.js';
export { readSpool } from './spool.js';
export { FedAvgAccumulator } from './strategies/fedavg.js';
export { type ResolvedStrategy, StrategyRegistry, strategies } from './strategies/registry.js';
export type {
  AggregatorResult,
  RoundAggregator,
  RoundBounds,
  Strategy,
  StrategyPlan,
  StrategyRound,
  StrategyRoundFields,
  StrategyUpdate,
} from './strategies/strategy.js';
