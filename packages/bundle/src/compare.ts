import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AlkiError, type ProgressCallback } from '@alki/core';
import { makeDirs } from '@alki/core/node';
import { evaluateTargets, formatHtml, formatMarkdown, formatTerminal, type EvaluateOptions, type EvaluationReport } from '@alki/eval';
import { assertOutsideProtected, assertWritableBundleDir } from './atomic-dir.js';
import { ALKI_VERSION } from './version.js';
import { buildBundle, calibrationSize, resolveCalibration, withQuickDefaults, type CalibrationOptions } from './build.js';
import { countParameters, isOnnxModelFolder, openHfModel, openOnnxModelFolder } from '@alki/models';
import { bundleEvalTarget } from './eval-target.js';
import { readBundle, type Bundle } from './read.js';
import { readCalibrationFile, resolveQuantizeOptions, type QuantizeOptions } from '@alki/quantizers';

/** Whether a bundle's recorded GPTQ/RTN settings are the ones a method resolves to (defaults that changed over time). */
function sameResolvedSettings(recorded: { mseClip?: boolean; trueSequential?: boolean; floatTargets?: boolean }, q: MethodSpec['quantize']): boolean {
  const r = resolveQuantizeOptions(q);
  return !!recorded.mseClip === !!r.mseClip && !!recorded.trueSequential === !!r.trueSequential && !!recorded.floatTargets === !!r.floatTargets;
}

/** One method of a comparison, e.g. rtn4 = RTN int4 block 32. */
export interface MethodSpec {
  label: string;
  quantize: Omit<QuantizeOptions, 'onProgress' | 'signal'>;
}

const KNOWN: Record<string, MethodSpec['quantize']> = {
  none: { method: 'none' },
  rtn8: { method: 'rtn', bits: 8, blockSize: 32 },
  rtn4: { method: 'rtn', bits: 4, blockSize: 32 },
  'rtn4-b128': { method: 'rtn', bits: 4, blockSize: 128 },
  // RTN int4 with min/max block ranges (RTN's default before it searched them).
  'rtn4-minmax': { method: 'rtn', bits: 4, blockSize: 32, mseClip: false },
  awq4: { method: 'awq', bits: 4, blockSize: 32 },
  gptq4: { method: 'gptq', bits: 4, blockSize: 32 },
  // What `alki build --bits 4` makes (defaultMethod, defaultBlockSize).
  'gptq4-b128': { method: 'gptq', bits: 4, blockSize: 128 },
  gptq8: { method: 'gptq', bits: 8, blockSize: 32 },
  smoothquant: { method: 'smoothquant' },
  // Naive W8A8: the same int8 format without smoothing (s = 1; SmoothQuant's α = 0 still divides by max|w|).
  'w8a8-naive': { method: 'smoothquant', smooth: false },
};

/** Parses `--methods`: "all" or a comma list of the known methods (none, rtn8, rtn4, gptq4, gptq4-b128, …). */
export function parseMethods(s: string): MethodSpec[] {
  const names =
    s === 'all'
      ? ['none', 'rtn8', 'gptq8', 'smoothquant', 'rtn4', 'awq4', 'gptq4', 'gptq4-b128']
      : s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
  if (names.length === 0) throw new AlkiError('BAD_OPTION', '--methods is empty', `choose from: all, ${Object.keys(KNOWN).join(', ')}`);
  return names.map((n) => {
    const q = KNOWN[n];
    if (!q) throw new AlkiError('BAD_OPTION', `unknown method "${n}" in --methods`, `choose from: all, ${Object.keys(KNOWN).join(', ')}`);
    return { label: n, quantize: q };
  });
}

export interface CompareOptions extends Pick<EvaluateOptions, 'metrics' | 'textPath' | 'context' | 'maxWindows' | 'speed' | 'sampledWindowCount'> {
  modelDir: string;
  sourceId?: string;
  methods: MethodSpec[];
  /** Folder for the bundles (one subfolder per method) and report.{json,html,md}. */
  out: string;
  /** Calibration of AWQ/GPTQ bundles (default: sampled from an int4 copy of the model). */
  calibration?: CalibrationOptions;
  /** Reuse bundles already in `out` that match (default true). */
  reuse?: boolean;
  maxPerplexityIncrease?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

export interface CompareResult {
  report: EvaluationReport;
  bundles: Bundle[];
  files: { json: string; html: string; markdown: string };
  /** The terminal table. */
  text: string;
  /** The builds' notes (e.g. the quick calibration chosen for a large model), each once. */
  notes: string[];
}

/**
 * Builds (or reuses) one bundle per method, measures all on the same windows
 * against fp32, writes report.json / report.html / report.md into `out` and
 * recommends the smallest bundle within the perplexity budget.
 */
export async function compareMethods(o: CompareOptions): Promise<CompareResult> {
  const methods = o.methods.some((m) => m.quantize.method === 'none') ? o.methods : [{ label: 'none', quantize: { method: 'none' as const } }, ...o.methods];
  assertComparisonDir(o.out, o.modelDir);
  // The model's size and context: what each build will resolve its calibration to, to tell which bundles in `out` match.
  const config = (isOnnxModelFolder(o.modelDir) ? openOnnxModelFolder(o.modelDir) : openHfModel(o.modelDir)).config;
  const parameters = countParameters(config);
  makeDirs(o.out);
  const bundles: Bundle[] = [];
  const notes = new Set<string>();
  for (const m of methods) {
    const dir = join(o.out, m.label);
    const existing = o.reuse !== false && existsSync(join(dir, 'alki.json')) ? tryRead(dir) : undefined;
    const q = existing?.manifest.quantization;
    const { auto: _auto, ...calibration } = resolveCalibration(o.calibration, parameters, m.quantize.method);
    // Reuse only a bundle of the same source, settings and calibration (SmoothQuant's α is not in the manifest: rebuild).
    const matches =
      existing &&
      existing.manifest.source.id === (o.sourceId ?? basename(o.modelDir)) &&
      // Formats change between versions (float16 scales, the 4-bit table of int4 models): only this version's bundles.
      existing.manifest.alkiVersion === ALKI_VERSION &&
      q!.method === m.quantize.method &&
      m.quantize.method !== 'smoothquant' &&
      (m.quantize.method === 'none' || (q!.bits === (m.quantize.bits ?? 4) && q!.groupSize === (m.quantize.blockSize ?? 32))) &&
      // Defaults changed (RTN's ranges min/max → searched; GPTQ fitted to float outputs): a bundle of the other kind is not this method's.
      sameResolvedSettings(q!, withQuickDefaults(m.quantize as Parameters<typeof withQuickDefaults>[0], calibration)) &&
      sameCalibration(existing.manifest.quantization.calibration, calibration, config.maxPositions);
    if (matches) {
      bundles.push(existing);
      continue;
    }
    const built = await buildBundle({
      modelDir: o.modelDir,
      sourceId: o.sourceId,
      out: dir,
      quantize: m.quantize,
      calibration: o.calibration,
      overwrite: true,
      onProgress: o.onProgress,
      signal: o.signal,
    });
    for (const n of built.notes) notes.add(n);
    bundles.push(readBundle(dir));
  }
  const baseIdx = methods.findIndex((m) => m.quantize.method === 'none');
  const targets = bundles.map((b, i) => bundleEvalTarget(b, methods[i].label === 'none' ? 'fp32' : methods[i].label));
  const baseline = targets[baseIdx];
  const manifest = bundles[baseIdx].manifest;
  const report = await evaluateTargets(
    targets.filter((_, i) => i !== baseIdx),
    { ...o, baseline, maxPositions: manifest.model.maxPositions, vocabSize: manifest.model.vocabSize },
  );
  const files = { json: join(o.out, 'report.json'), html: join(o.out, 'report.html'), markdown: join(o.out, 'report.md') };
  const title = `Alki comparison — ${o.sourceId ?? manifest.source.id}`;
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.html, formatHtml(report, title));
  writeFileSync(files.markdown, `# ${title}\n\n${formatMarkdown(report)}\n`);
  return { report, bundles, files, text: formatTerminal(report), notes: [...notes] };
}

const REPORT_FILES = ['report.json', 'report.html', 'report.md'];

/**
 * `out` may hold only what a comparison writes — one bundle folder per method label and the reports — so that a
 * comparison never overwrites a user's files; and it may not be the current folder or the model's.
 */
function assertComparisonDir(out: string, modelDir: string): void {
  assertOutsideProtected(out, { protect: [modelDir] });
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory())
    throw new AlkiError('BAD_OPTION', `--out ${out} is a file`, 'choose a folder for the comparison, such as dist/compare-<model>');
  const labels = new Set([...Object.keys(KNOWN)]);
  const foreign = readdirSync(out).filter((e) => {
    if (e.startsWith('.')) return !/\.partial-\d+-/.test(e); // Alki's own temporary folders are swept by the builds
    if (REPORT_FILES.includes(e)) return e === 'report.json' && !isAlkiReport(join(out, e));
    // A method's bundle is rebuilt in place when its settings changed: one holding files of its own would stop that.
    if (labels.has(e)) return !existsSync(join(out, e, 'alki.json')) || !replaceable(join(out, e));
    return true;
  });
  if (foreign.length) {
    throw new AlkiError(
      'BAD_OPTION',
      `--out ${out} holds files a comparison did not write (${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}); Alki will not overwrite them`,
      'choose a new or empty folder for --out',
    );
  }
}

function isAlkiReport(path: string): boolean {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8'));
    return !!r && typeof r === 'object' && Array.isArray(r.evaluations) && typeof r.machine === 'object';
  } catch {
    return false;
  }
}

function tryRead(dir: string): Bundle | undefined {
  try {
    return readBundle(dir);
  } catch {
    return undefined;
  }
}

/** Whether a bundle's recorded calibration is what `wanted` would produce (bundles without calibration always match). */
function sameCalibration(recorded: Bundle['manifest']['quantization']['calibration'], wanted: CalibrationOptions, maxPositions: number): boolean {
  if (!recorded) return true;
  const { samples, seqLen } = calibrationSize(wanted, maxPositions);
  if (recorded.samples !== samples || recorded.sequenceLength !== seqLen) return false;
  if (!wanted.path) return recorded.source.startsWith('sampled') && (wanted.seed ?? 0) === Number(/seed (\d+)/.exec(recorded.source)?.[1] ?? 0);
  return recorded.sha256 === createHash('sha256').update(readCalibrationFile(wanted.path)).digest('hex');
}

/** Whether --force could replace the bundle folder `dir` (see assertWritableBundleDir). */
function replaceable(dir: string): boolean {
  try {
    assertWritableBundleDir(dir, true);
    return true;
  } catch {
    return false;
  }
}
