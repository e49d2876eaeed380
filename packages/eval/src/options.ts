import { AlkiError } from '@alki/core';

export type MetricName = 'perplexity' | 'speed' | 'memory' | 'size';
export const ALL_METRICS: MetricName[] = ['perplexity', 'speed', 'memory', 'size'];

/** The numbers {@link validateEvaluateOptions} checks (Node's evaluateTargets and the browser's benchmark alike). */
export interface MeasureNumbers {
  metrics: MetricName[];
  context?: number;
  maxPositions?: number;
  maxWindows?: number;
  sampledWindowCount?: number;
  speed?: { runs?: number; warmupRuns?: number; promptTokens?: number; newTokens?: number; threads?: number };
}

/** Parses "perplexity,speed" / "all" into metric names. */
export function parseMetrics(s: string): MetricName[] {
  const parts = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (parts.includes('all')) return [...ALL_METRICS];
  for (const p of parts) {
    if (!(ALL_METRICS as string[]).includes(p)) throw new AlkiError('BAD_OPTION', `unknown metric "${p}"`, `choose from: ${ALL_METRICS.join(', ')}, all`);
  }
  return parts as MetricName[];
}

/** Checks every number of the options before any measurement starts (a typo must not cost a long run). */
export function validateEvaluateOptions(o: MeasureNumbers): void {
  const whole = (name: string, v: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max)) {
      throw new AlkiError(
        'BAD_OPTION',
        `${name} must be a whole number${max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : ` ≥ ${min}`}, got ${v}`,
        'see `alki bench --help`',
      );
    }
  };
  whole('--context', o.context, 2, o.maxPositions);
  whole('--max-windows', o.maxWindows, 1);
  whole('the number of sampled windows', o.sampledWindowCount, 1);
  whole('--runs', o.speed?.runs, 1, 1000);
  whole('the warm-up runs', o.speed?.warmupRuns, 0, 1000);
  whole('--prompt-tokens', o.speed?.promptTokens, 1, o.maxPositions);
  whole('--new-tokens', o.speed?.newTokens, 1, o.maxPositions);
  whole('--threads', o.speed?.threads, 1, 1024);
  const P = o.speed?.promptTokens ?? 128;
  const N = o.speed?.newTokens ?? 64;
  if ((o.metrics.includes('speed') || o.metrics.includes('memory')) && o.maxPositions && P + N > o.maxPositions) {
    throw new AlkiError(
      'BAD_OPTION',
      `the speed test's ${P} prompt + ${N} new tokens exceed the model's context of ${o.maxPositions}`,
      'lower --prompt-tokens or --new-tokens',
    );
  }
}
