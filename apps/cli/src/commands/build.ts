import type { Argv } from 'yargs';
import {
  buildBundle,
  defaultBlockSize,
  defaultMethod,
  parseMemory,
  quantizeOptionsOf,
  targetSettings,
  type BuildBundleOptions,
  type TargetSettings,
} from '@alki/bundle';
import { resolveTarget } from './plan.js';
import { AlkiError } from '@alki/core';
import { DEMO, resolveModel } from '@alki/models';
import { TextGenerator } from '@alki/runtime';
import { formatTerminal, parseMetrics } from '@alki/eval';
import { note, progressPrinter, type OutputFlags } from '../output.js';
import { evalFlags, parsePercent, speedFlags } from './eval-flags.js';
import { describeBundle } from './info.js';

/**
 * CalibrationOptions.quick from the flags: --quick / --no-quick as given; the demo's GPTQ quick unless a size is given;
 * otherwise unset, so that the recipe follows the model's size (resolveCalibration).
 */
export function quickFlag(quick: boolean | undefined, demoGptq: boolean, sized: boolean): boolean | undefined {
  return quick ?? (demoGptq && !sized ? true : undefined);
}

/** dist/<source>-<method>[-int<bits>], e.g. dist/stories260k-rtn-int4. */
function defaultOut(id: string, method: string, bits: number): string {
  const name = id
    .split('/')
    .pop()!
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-');
  return `dist/${name}-${method === 'none' ? 'fp32' : `${method}-int${bits}`}`;
}

/** `--exclude` values: "/re/" (optionally with flags, "/re/i") is a regular expression, anything else an exact name. */
export function parseExclude(values: string[] | undefined): (string | RegExp)[] | undefined {
  if (!values?.length) return undefined;
  return values.map((v) => {
    const m = /^\/(.+)\/([a-z]*)$/.exec(v);
    if (!m) return v;
    try {
      return new RegExp(m[1], m[2]);
    } catch (e) {
      throw new AlkiError(
        'BAD_OPTION',
        `--exclude ${v} is not a valid regular expression: ${(e as Error).message}`,
        'write it as /pattern/, e.g. /mlp\\.down_proj/ or /^lm_head/',
      );
    }
  });
}

export function buildCommand(y: Argv, signal: AbortSignal) {
  return y.command(
    'build <model>',
    'export a HuggingFace model to ONNX, quantize it and write a bundle',
    (a) =>
      evalFlags(a)
        .positional('model', { type: 'string', demandOption: true, describe: 'local model folder, hub id (owner/name), or "demo"' })
        .option('quantize', { alias: 'q', type: 'string', describe: 'method: none | rtn | awq | gptq | smoothquant (default: gptq at 4 bits, rtn at 8)' })
        .option('bits', { type: 'number', describe: 'weight bits: 4 (default) or 8; SmoothQuant is always 8' })
        .option('block-size', { type: 'number', describe: 'inputs per scale: 16, 32, 64, 128 or 256 (default: 128 for GPTQ below 8 bits, else 32)' })
        .option('symmetric', { type: 'boolean', default: false, describe: 'no zero points (default: per-block zero points)' })
        .option('accuracy-level', {
          type: 'number',
          describe:
            'MatMulNBits accuracy_level: 4 = int8 activations (default; 2.3× faster int4 decode, +0.1% perplexity), 0 = float activations (exact, slower)',
        })
        .option('alpha', { type: 'number', describe: 'SmoothQuant migration strength α in [0, 1] (default 0.5)' })
        .option('smooth', { type: 'boolean', describe: 'SmoothQuant: --no-smooth builds the naive W8A8 baseline (no smoothing, no calibration)' })
        .option('w8a8-format', {
          type: 'string',
          choices: ['s7', 's8', 'u8'],
          describe: 'SmoothQuant weight codes: s7 (default; safe on every CPU), s8 (VNNI x86, arm64, wasm only), u8 (exact everywhere, slower prefill)',
        })
        .option('exclude', { type: 'string', array: true, describe: 'weights to keep in float: exact names or /regular expressions/ (repeatable)' })
        .option('head-bits', { type: 'number', describe: 'bits of the output projection (lm_head): 4, 8 (default) or 32 (float)' })
        .option('embed-bits', {
          type: 'number',
          describe:
            "bits of the token embedding table: 4, 8 or 32 (float); default 4 for int4 models, 8 for int8; a tied table is stored once, as the head's codes, at the head's width",
        })
        .option('act-order', { type: 'boolean', default: false, describe: 'GPTQ: quantize columns by decreasing activation energy' })
        .option('awq-scales', {
          type: 'boolean',
          describe:
            'GPTQ: fold AWQ’s activation-aware scales into the graph first, then round with GPTQ (default on at --block-size 16 below 8 bits: stories260K +3.41% → +2.86% over 12 seeds on an AVX-512 VNNI Xeon; --no-awq-scales to turn off)',
        })
        .option('true-sequential', {
          type: 'boolean',
          describe:
            'GPTQ: statistics of each linear input after the layer’s earlier linears are quantized (default on, off with --quick — the default from 250M parameters; --no-true-sequential: one pass per layer)',
        })
        .option('float-targets', {
          type: 'boolean',
          describe:
            'GPTQ: fit each linear to the float model’s outputs, not to its float weights (default on, off with --quick — the default from 250M parameters; about 2× the calibration time; --no-float-targets for plain GPTQ)',
        })
        .option('mse-clip', {
          type: 'boolean',
          describe:
            'RTN/GPTQ: each block’s range by the least squared error of its rounding (default on for GPTQ, and for RTN below 8 bits in blocks of up to 64; --no-mse-clip for min/max)',
        })
        .option('calib', {
          type: 'string',
          describe: 'AWQ/GPTQ calibration text (.txt, or .jsonl with a "text" field); default: text sampled from an int4 copy of the model',
        })
        .option('calib-samples', {
          type: 'number',
          describe:
            'calibration samples (default 32, 8 with --quick; 128 for the full-size set). Giving a size turns off the automatic --quick of models from 250M parameters: GPTQ then runs with its full levers',
        })
        .option('calib-seqlen', { type: 'number', describe: 'tokens per calibration sample (default min(512, context); 256 with --quick)' })
        .option('quick', {
          type: 'boolean',
          describe:
            'small calibration (8 × 256 tokens) and plain GPTQ (no --true-sequential / --float-targets unless given): AWQ/GPTQ of a 1.1B model in 4–6 min on 2 cores of an AVX-512 VNNI Xeon (pnpm bench:build). Default: on for AWQ/GPTQ of models from 250M parameters unless --calib-samples/--calib-seqlen are given; --no-quick for the full recipe (several times longer)',
        })
        .option('out', { alias: 'o', type: 'string', describe: 'bundle folder (default dist/<model>-<method>-int<bits>)' })
        .option('force', { type: 'boolean', default: false, describe: 'replace an existing bundle' })
        .option('test-run', {
          type: 'boolean',
          default: true,
          describe: 'run the written model on a few tokens before committing it (--no-test-run to build on a machine that cannot run the model)',
        })
        .option('resume', {
          type: 'boolean',
          default: false,
          describe: 'AWQ/GPTQ: continue an interrupted build of the same model and options after its last finished layer',
        })
        .option('flavour', {
          type: 'string',
          choices: ['ort', 'portable'],
          describe:
            'graph: ort (default) = onnxruntime fused ops (GroupQueryAttention, SkipSimplifiedLayerNormalization; fastest), portable = the float graph in standard ONNX ops (quantized layers stay com.microsoft ops)',
        })
        .option('target', {
          type: 'string',
          describe: 'build for a device: a preset (alki presets) or auto (this machine); explicit flags win and are reported',
        })
        .option('memory', { type: 'string', describe: 'with --target: the device’s memory, e.g. 2GB (default: the preset’s)' })
        .option('force-fit', { type: 'boolean', describe: 'with --target: build even when the estimate says it will not fit' })
        .option('external-data', {
          type: 'string',
          default: 'auto',
          choices: ['auto', 'always', 'never'],
          describe: 'weights in onnx/model*.onnx_data (the transformers.js name)',
        })
        .option('revision', { type: 'string', describe: 'hub branch, tag or commit (default main); the commit it resolves to is recorded in alki.json' })
        .option('offline', { type: 'boolean', describe: 'no network: use the Hugging Face cache only (also HF_HUB_OFFLINE=1)' })
        .option('benchmark', { type: 'boolean', describe: 'measure the bundle against fp32 and store the figures in alki.json (default: on for demo)' })
        .option('metrics', { type: 'string', describe: 'with --benchmark: perplexity,speed,memory,size or all (default all)' })
        .option('max-ppl-increase', {
          type: 'string',
          describe: 'with --benchmark: fail when perplexity rises more than this percentage over fp32 (default 10)',
        })
        .option('allow-degraded', { type: 'boolean', describe: 'with --benchmark: keep the bundle even above --max-ppl-increase' })
        .example('alki build demo', 'offline: the embedded stories260K, GPTQ int4 (quick calibration), measured against fp32, with a sample')
        .example('alki build ./stories260K --quantize rtn --bits 4 --block-size 32 --out dist/s260k-rtn4', ''),
    async (args) => {
      const flags = args as OutputFlags;
      const onProgress = progressPrinter(flags);
      // The demo shows what Alki is for: measured against fp32 on the embedded TinyStories text, then a sample.
      const demo = args.model === 'demo';
      const benchmark = (args.benchmark as boolean | undefined) ?? demo;
      const benchText = (args.text as string | undefined) ?? (demo ? DEMO.textPath : undefined);
      if (!benchmark) {
        const stray = [
          'metrics',
          'max-ppl-increase',
          'allow-degraded',
          'text',
          'context',
          'max-windows',
          'runs',
          'prompt-tokens',
          'new-tokens',
          'threads',
        ].filter((k) => args[k] !== undefined);
        if (stray.length)
          throw new AlkiError(
            'BAD_OPTION',
            `${stray.map((k) => `--${k}`).join(', ')} only ${stray.length > 1 ? 'apply' : 'applies'} with --benchmark`,
            'add --benchmark to measure the bundle while building it, or drop them',
          );
      }
      if (args.target === undefined && (args.memory !== undefined || args['force-fit'] !== undefined))
        throw new AlkiError(
          'BAD_OPTION',
          `${args.memory !== undefined ? '--memory' : '--force-fit'} only applies with --target`,
          'add --target <preset> (alki presets lists them), or drop it',
        );
      // What the user set explicitly: with --target, the rest comes from the preset; without, from the defaults.
      const explicit: Partial<TargetSettings> = {
        method: args.quantize as TargetSettings['method'] | undefined,
        bits: args.bits as 4 | undefined,
        blockSize: args['block-size'] as number | undefined,
        accuracyLevel: args['accuracy-level'] as 0 | undefined,
        headBits: args['head-bits'] as 8 | undefined,
        w8a8Format: args['w8a8-format'] as 's7' | undefined,
        flavour: args.flavour as 'ort' | undefined,
      };
      const t = args.target !== undefined ? resolveTarget(args.target as string) : undefined;
      if (t?.note) note(flags, t.note);
      const chosen = t ? targetSettings(t.preset, explicit) : undefined;
      if (chosen)
        note(
          flags,
          `target ${t!.preset.id}: ${chosen.settings.method} ${chosen.settings.method === 'none' ? 'fp32' : `int${chosen.settings.bits}`}, block ${chosen.settings.blockSize}, head ${chosen.settings.headBits} bits, ${chosen.settings.flavour}${chosen.overrides.length ? ` (overridden by your flags: ${chosen.overrides.join(', ')})` : ''}`,
        );
      // Without a method: GPTQ below 8 bits, RTN at 8 (defaultMethod). The demo's GPTQ takes the quick calibration: the
      // whole demo takes seconds.
      const method = chosen?.settings.method ?? explicit.method ?? defaultMethod(explicit.bits);
      rejectStrayQuantizeFlags(args, method);
      const defaultGptq = !chosen && explicit.method === undefined && method === 'gptq';
      const demoGptq = demo && defaultGptq;
      if (defaultGptq && !demo)
        note(
          flags,
          'method: GPTQ, the default below 8 bits (block 128 unless --block-size; calibrated on --calib text, or on text sampled from the model); --quantize rtn builds without calibration, in seconds to minutes',
        );
      // Flags that apply on top of a target's settings and of the explicit ones alike.
      const flagOptions = {
        symmetric: args.symmetric as boolean,
        actOrder: (args['act-order'] as boolean) || undefined,
        mseClip: args['mse-clip'] as boolean | undefined,
        awqScales: args['awq-scales'] as boolean | undefined,
        trueSequential: args['true-sequential'] as boolean | undefined,
        floatTargets: args['float-targets'] as boolean | undefined,
        alpha: args.alpha as number | undefined,
        smooth: args.smooth === false ? false : undefined,
        exclude: parseExclude(args.exclude as string[] | undefined),
        embedBits: args['embed-bits'] as 8 | undefined,
      };
      const quantize: BuildBundleOptions['quantize'] = chosen
        ? { ...(quantizeOptionsOf(chosen.settings) as BuildBundleOptions['quantize']), ...flagOptions }
        : {
            method: method as 'rtn',
            blockSize: explicit.blockSize ?? defaultBlockSize(method as 'rtn', explicit.bits),
            accuracyLevel: explicit.accuracyLevel as 0 | undefined,
            w8a8Format: explicit.w8a8Format,
            headBits: explicit.headBits,
            bits: explicit.bits as 4 | undefined,
            ...flagOptions,
          };
      const source = await resolveModel(args.model as string, {
        revision: args.revision as string | undefined,
        offline: args.offline as boolean | undefined,
        onProgress,
        signal,
      });
      const bits = (quantize as { bits?: number }).bits ?? (method === 'smoothquant' ? 8 : 4);
      const out = (args.out as string | undefined) ?? defaultOut(source.id, method, bits);
      note(flags, `building ${out} from ${source.id} (${source.dir})`);
      const t0 = Date.now();
      const result = await buildBundle({
        modelDir: source.dir,
        out,
        sourceId: source.id,
        revision: source.revision,
        commitSha: source.commitSha,
        quantize,
        flavour: (chosen?.settings.flavour ?? explicit.flavour ?? 'ort') as 'ort',
        target: chosen
          ? {
              preset: t!.preset,
              settings: chosen.settings,
              overrides: chosen.overrides,
              memoryBytes: args.memory !== undefined ? parseMemory(args.memory as string) : t!.detectedMemoryBytes,
              forceFit: args['force-fit'] as boolean | undefined,
            }
          : undefined,
        calibration: {
          path: args.calib as string | undefined,
          samples: args['calib-samples'] as number | undefined,
          seqLen: args['calib-seqlen'] as number | undefined,
          quick: quickFlag(args.quick as boolean | undefined, demoGptq, args['calib-samples'] !== undefined || args['calib-seqlen'] !== undefined),
        },
        externalData: args['external-data'] as 'auto',
        overwrite: args.force as boolean,
        resume: args.resume as boolean,
        testRun: args['test-run'] as boolean,
        benchmark: benchmark
          ? {
              metrics: parseMetrics((args.metrics as string | undefined) ?? 'all'),
              textPath: benchText,
              context: args.context as number | undefined,
              // 16 windows of text; without text, the sampled windows' own default (8) unless --max-windows says.
              maxWindows: (args['max-windows'] as number | undefined) ?? (benchText ? 16 : undefined),
              speed: speedFlags(args),
              maxPerplexityIncrease: parsePercent(args['max-ppl-increase'] ?? '10', '--max-ppl-increase'),
              allowDegraded: (args['allow-degraded'] as boolean | undefined) ?? false,
            }
          : undefined,
        onProgress,
        signal,
      });
      const sample = demo ? await sampleText(result.dir) : undefined;
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ dir: result.dir, manifest: result.manifest, report: result.report, notes: result.notes, ...(sample ? { sample } : {}) }, null, 2)}\n`,
        );
        return;
      }
      note(flags, `built in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      process.stdout.write(`${describeBundle(result.dir, result.manifest)}\n`);
      if (result.evaluation) process.stdout.write(`\n${formatTerminal(result.evaluation)}\n`);
      if (sample)
        process.stdout.write(`\nsample (greedy, ${sample.tokens} tokens): ${sample.text}\n\nnext: alki run ${result.dir} --prompt "${DEMO.prompt}"\n`);
    },
  );
}

/** The demo's closing proof: the built bundle continues llama2.c's prompt. */
async function sampleText(dir: string): Promise<{ prompt: string; text: string; tokens: number }> {
  const gen = await TextGenerator.load(dir, { threads: 1 });
  try {
    const r = await gen.generate(DEMO.prompt, { maxNewTokens: 48 });
    return { prompt: DEMO.prompt, text: `${DEMO.prompt}${r.text}`, tokens: r.ids.length };
  } finally {
    await gen.release();
  }
}

/**
 * Flags that would do nothing with the chosen method are refused (as the benchmark's and --target's are), not
 * silently ignored: calibration flags without calibration, quantization flags with `--quantize none`.
 */
export function rejectStrayQuantizeFlags(args: Record<string, unknown>, method: string): void {
  /** Refuses those of `keys` that were given, naming them (`flags`) in one message. */
  const refuse = (keys: string[], message: (flags: string, many: boolean) => string, hint: string) => {
    const stray = keys.filter((k) => args[k] !== undefined && args[k] !== false);
    if (stray.length) throw new AlkiError('BAD_OPTION', message(stray.map((k) => `--${k}`).join(', '), stray.length > 1), hint);
  };
  const calibration = ['calib', 'calib-samples', 'calib-seqlen', 'quick'];
  if (method === 'none')
    refuse(
      ['bits', 'block-size', 'symmetric', 'head-bits', 'embed-bits', 'exclude', 'accuracy-level', ...calibration, 'resume'],
      (flags, many) => `--quantize none keeps the model in float32: ${flags} ${many ? 'do' : 'does'} not apply`,
      'drop them, or choose a method: --quantize gptq (the default), rtn, awq or smoothquant',
    );
  else if (method === 'rtn')
    refuse(
      calibration,
      (flags, many) => `RTN needs no calibration: ${flags} ${many ? 'apply' : 'applies'} to AWQ, GPTQ and SmoothQuant only`,
      'drop them, or use --quantize gptq (the default) or awq to calibrate',
    );
  else if (method === 'smoothquant' && args.smooth === false)
    refuse(
      [...calibration, 'alpha'],
      (flags, many) => `--no-smooth builds the naive W8A8 model, which needs no calibration: ${flags} ${many ? 'apply' : 'applies'} to smoothing only`,
      'drop them, or drop --no-smooth to smooth with calibration',
    );
  if (args.resume === true && method !== 'awq' && method !== 'gptq')
    throw new AlkiError(
      'BAD_OPTION',
      `--resume continues AWQ and GPTQ builds (they record each finished layer), not ${method}`,
      'drop --resume: this build starts over in any case',
    );
}
