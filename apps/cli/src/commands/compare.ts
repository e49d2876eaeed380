import type { Argv } from 'yargs';
import { compareMethods, parseMethods } from '@alki/bundle';
import { parseMetrics } from '@alki/eval';
import { resolveModel } from '@alki/models';
import { note, progressPrinter, type OutputFlags } from '../output.js';
import { evalFlags, parsePercent, speedFlags } from './eval-flags.js';

export function compareCommand(y: Argv, signal: AbortSignal) {
  return y.command(
    'compare <model>',
    'build one bundle per method, measure them all the same way, report and recommend',
    (a) =>
      evalFlags(
        a
          .positional('model', { type: 'string', demandOption: true, describe: 'local model folder, hub id, or "demo"' })
          .option('methods', {
            type: 'string',
            default: 'all',
            describe: 'all, or a comma list of none, rtn8, gptq8, smoothquant, w8a8-naive, rtn4, awq4, gptq4, rtn4-b128',
          })
          .option('calib', { type: 'string', describe: 'AWQ/GPTQ calibration text (default: sampled from an int4 copy of the model)' })
          .option('calib-samples', {
            type: 'number',
            describe: 'calibration samples (default 32, 8 × 256 tokens with --quick, the default from 250M parameters)',
          })
          .option('metrics', { type: 'string', default: 'all' })
          .option('revision', { type: 'string', describe: 'hub branch, tag or commit (default main)' })
          .option('offline', { type: 'boolean', describe: 'no network: use the Hugging Face cache only (also HF_HUB_OFFLINE=1)' })
          .option('quick', {
            type: 'boolean',
            describe:
              'fewer windows (8), speed runs (2) and calibration tokens (8 × 256). The calibration part is the default from 250M parameters (AWQ/GPTQ); --no-quick asks for the full recipe',
          })
          .option('out', { type: 'string', describe: 'folder for bundles and reports (default dist/compare-<model>)' })
          .option('max-ppl-increase', { type: 'string', default: '10%', describe: 'perplexity budget of the recommendation' })
          .example('alki compare ./stories260K --methods none,rtn8,rtn4 --quick --text tinystories.txt', ''),
      ),
    async (args) => {
      const flags = args as OutputFlags;
      const onProgress = progressPrinter(flags);
      const methods = parseMethods(args.methods as string);
      const metrics = parseMetrics(args.metrics as string);
      const maxPerplexityIncrease = parsePercent(args['max-ppl-increase'], '--max-ppl-increase');
      const source = await resolveModel(args.model as string, {
        revision: args.revision as string | undefined,
        offline: args.offline as boolean | undefined,
        onProgress,
        signal,
      });
      const out = (args.out as string | undefined) ?? `dist/compare-${source.id.split('/').pop()!.toLowerCase()}`;
      const quick = args.quick === true;
      const speed = { ...(quick ? { runs: 2, warmupRuns: 1 } : {}), ...speedFlags(args) };
      const result = await compareMethods({
        modelDir: source.dir,
        sourceId: source.id,
        methods,
        out,
        metrics,
        textPath: args.text as string | undefined,
        context: args.context as number | undefined,
        // Text windows: 8 with --quick; sampled windows (no --text): sampledWindowCount, unless --max-windows says.
        maxWindows: (args['max-windows'] as number | undefined) ?? (quick && args.text ? 8 : undefined),
        sampledWindowCount: quick ? 4 : 8,
        speed,
        maxPerplexityIncrease,
        // Neither --quick nor --no-quick: the calibration recipe follows the model's size (resolveCalibration).
        calibration: { path: args.calib as string | undefined, samples: args['calib-samples'] as number | undefined, quick: args.quick as boolean | undefined },
        onProgress,
        signal,
      });
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ report: result.report, files: result.files, bundles: result.bundles.map((b) => b.dir), notes: result.notes }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(`${result.text}\n`);
      note(flags, `\nreports: ${result.files.html}, ${result.files.json}, ${result.files.markdown}`);
    },
  );
}
