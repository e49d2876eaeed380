import { writeFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { AlkiError, fsError } from '@alki/core';
import { assertWritableFile } from '../files.js';
import { bundleEvalTarget, checkBundleSize, machineWarnings, readBundle, targetThreads, verifyBundle } from '@alki/bundle';
import { evaluateTargets, formatHtml, formatTerminal, parseMetrics, runBrowserBench, validateEvaluateOptions, type EvaluationReport } from '@alki/eval';
import { webBenchDir } from '@alki/web-bench';
import { note, progressPrinter, warn, type OutputFlags } from '../output.js';
import { evalFlags, speedFlags } from './eval-flags.js';

export function benchCommand(y: Argv, signal: AbortSignal) {
  return y.command(
    'bench <bundle>',
    'measure perplexity, speed, memory and size of a bundle (optionally against a baseline bundle)',
    (a) =>
      evalFlags(
        a
          .positional('bundle', { type: 'string', demandOption: true })
          .option('metrics', {
            type: 'string',
            describe: 'perplexity,speed,memory,size or all (default all; speed,memory,size when there is no --text or --baseline to score perplexity on)',
          })
          .option('baseline', { type: 'string', describe: 'baseline bundle (usually the fp32 one) for ratios, KL and top-1' })
          .option('report', { type: 'string', describe: 'also write a self-contained HTML report here' })
          .option('verify', { type: 'boolean', default: true, describe: 'check file hashes first (--no-verify to skip)' })
          .option('browser', {
            type: 'boolean',
            default: false,
            describe: 'measure in headless Chromium with onnxruntime-web (the web-bench page, served on 127.0.0.1)',
          })
          .option('backend', { type: 'string', choices: ['wasm', 'webgpu'], describe: 'with --browser: onnxruntime-web backend (default wasm)' })
          .option('screenshot', { type: 'string', describe: 'with --browser: save a PNG of the page with its results' })
          .example('alki bench dist/s260k-rtn4 --baseline dist/s260k-fp32 --text tinystories.txt --report report.html', '')
          .example('alki bench dist/s260k-rtn4 --browser --backend wasm --threads 2', ''),
      ),
    async (args) => {
      const flags = args as OutputFlags;
      // Plain `alki bench <bundle>` measures what needs no text (Alki ships none) instead of failing.
      const textless = args.text === undefined && args.baseline === undefined && !args.browser;
      const metrics = parseMetrics((args.metrics as string | undefined) ?? (textless ? 'speed,memory,size' : 'all'));
      if (args.metrics === undefined && textless)
        note(flags, 'perplexity needs --text FILE (or --baseline BUNDLE, for agreement on text sampled from it): measuring speed, memory and size');
      if (args.report !== undefined) assertWritableFile(args.report as string, '--report');
      const bundles = [readBundle(args.bundle as string), ...(args.baseline ? [readBundle(args.baseline as string)] : [])];
      if (!args.verify) bundles.forEach(checkBundleSize);
      if (args.verify) {
        for (const b of bundles) {
          const v = verifyBundle(b.dir);
          if (!v.ok)
            throw new AlkiError(
              'VERIFY_FAILED',
              `${b.dir} failed verification: ${v.problems.map((p) => `${p.path} (${p.problem})`).join(', ')}`,
              'the bundle was changed or damaged after it was built; rebuild it (or pass --no-verify to measure it anyway)',
            );
        }
      }
      const [bundle, base] = bundles;
      const warnings = (await Promise.all(bundles.map((b) => machineWarnings(b.manifest)))).flatMap((w, i) => w.map((x) => `${bundles[i].dir}: ${x}`));
      warnings.forEach(warn);
      if (!args.browser && (args.backend !== undefined || args.screenshot !== undefined)) {
        throw new AlkiError(
          'BAD_OPTION',
          `--${args.backend !== undefined ? 'backend' : 'screenshot'} only applies to --browser`,
          'add --browser to measure in Chromium with onnxruntime-web',
        );
      }
      if (args.screenshot !== undefined) assertWritableFile(args.screenshot as string, '--screenshot');
      const speed = { ...(targetThreads(bundle.manifest) ? { threads: targetThreads(bundle.manifest) } : {}), ...speedFlags(args) };
      let report: EvaluationReport;
      if (args.browser) {
        const browserMetrics = metrics.filter((m) => m !== 'size');
        validateEvaluateOptions({
          metrics: browserMetrics,
          context: args.context as number | undefined,
          maxWindows: args['max-windows'] as number | undefined,
          maxPositions: bundle.manifest.model.maxPositions,
          speed,
        });
        report = await runBrowserBench({
          pageDir: webBenchDir,
          bundleDir: bundle.dir,
          baselineDir: base?.dir,
          textPath: args.text as string | undefined,
          backend: (args.backend as 'wasm' | 'webgpu' | undefined) ?? 'wasm',
          threads: speed.threads,
          metrics: browserMetrics,
          context: args.context as number | undefined,
          maxWindows: args['max-windows'] as number | undefined,
          speed,
          screenshotPath: args.screenshot as string | undefined,
          onProgress: progressPrinter(flags),
          signal,
        });
        if (base && report.baseline) report.baseline.target.name = `baseline ${report.baseline.target.name}`;
      } else {
        report = await evaluateTargets([bundleEvalTarget(bundle)], {
          metrics,
          baseline: base ? bundleEvalTarget(base, `baseline ${bundleEvalTarget(base).name}`) : undefined,
          textPath: args.text as string | undefined,
          context: args.context as number | undefined,
          maxWindows: args['max-windows'] as number | undefined,
          maxPositions: bundle.manifest.model.maxPositions,
          vocabSize: bundle.manifest.model.vocabSize,
          speed,
          onProgress: progressPrinter(flags),
          signal,
        });
      }
      // The figures are printed first: a report that cannot be written must not throw a finished measurement away.
      process.stdout.write(flags.json ? `${JSON.stringify({ ...report, warnings }, null, 2)}\n` : `${formatTerminal(report)}\n`);
      if (args.report) {
        try {
          writeFileSync(args.report as string, formatHtml(report, `Alki benchmark — ${bundle.manifest.source.id}`));
        } catch (e) {
          throw fsError(e, `writing the HTML report ${args.report} (the figures above are complete)`);
        }
        note(flags, `HTML report: ${args.report}`);
      }
      if (args.screenshot) note(flags, `screenshot: ${args.screenshot}`);
    },
  );
}
