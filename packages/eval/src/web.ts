// @alki/eval/web: measure a bundle in the browser with onnxruntime-web (no Node built-ins), and show the result
// with the same table, charts and HTML report as `alki bench` in Node.
export { benchmarkInBrowser, WASM_MAX_BYTES } from './browser-bench.js';
export type { BrowserBenchOptions, BrowserBackend, BrowserReport, BrowserRunInfo, OrtWeb } from './browser-bench.js';
export { bundleFromUrl, bundleFromFiles } from './bundle-source.js';
export type { BundleSource } from './bundle-source.js';
export { evaluateQuality } from './quality.js';
export type { QualityResult } from './quality.js';
export { PPL_PROTOCOL, textWindows, sampledWindows } from './windows.js';
export type { EvalWindows } from './windows.js';
export { timeGeneration } from './speed-loop.js';
export type { GenerationTimes } from './speed-loop.js';
export { makeReport, ratiosAgainst, describeRatios } from './report.js';
export type { EvalTarget, Evaluation, EvaluationReport, Ratios, Recommendation } from './report.js';
export type { MachineInfo, SpeedResult } from './speed.js';
export { formatTerminal, formatMarkdown, howMeasured, tableRows, tableHeader, TABLE_HEADER } from './format.js';
export { formatHtml } from './html.js';
export { parseMetrics, ALL_METRICS, validateEvaluateOptions } from './options.js';
export type { MetricName, MeasureNumbers } from './options.js';
