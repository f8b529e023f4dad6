export { escapeHtml, type LineChartOptions, type LineSeries, lineChart, SERIES_COLORS } from './charts.js';
export {
  predictionImages,
  type ReportImage,
  renderTrainingReport,
  type TrainingReportInput,
  writeTrainingReport,
} from './html.js';
export { writeRunReport } from './run-report.js';
