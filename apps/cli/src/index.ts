import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { removePartialDirs } from '@alki/bundle';
import { buildCommand } from './commands/build.js';
import { infoCommand } from './commands/info.js';
import { runCommand } from './commands/run.js';
import { benchCommand } from './commands/bench.js';
import { compareCommand } from './commands/compare.js';
import { EXIT, reportError } from './errors.js';
import pkg from '../package.json';

const argv = hideBin(process.argv);
const json = argv.includes('--json');
const verbose = argv.includes('--verbose');
const controller = new AbortController();

// `alki info … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// Ctrl-C: stop at the next step boundary, remove half-written bundles, exit 130.
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(EXIT.interrupted);
  interrupted = true;
  controller.abort();
  removePartialDirs();
  process.stderr.write('\ninterrupted: no bundle was written\n');
  process.exit(EXIT.interrupted);
});

let cli: Argv = yargs(argv)
  .scriptName('alki')
  .usage('$0 <command> [options]\n\nTake a HuggingFace language model to an edge device: export, quantize, bundle, run.')
  .option('json', { type: 'boolean', default: false, global: true, describe: 'machine-readable output on stdout' })
  .option('quiet', { type: 'boolean', default: false, global: true, describe: 'no progress output' })
  .option('verbose', { type: 'boolean', default: false, global: true, describe: 'stack traces on errors' });
cli = buildCommand(cli, controller.signal);
cli = runCommand(cli, controller.signal);
cli = infoCommand(cli);
cli = benchCommand(cli, controller.signal);
cli = compareCommand(cli, controller.signal);

try {
  await cli
    .demandCommand(1, 'name a command: build, run, info, bench or compare')
    .strict()
    .recommendCommands()
    .help()
    .version(pkg.version)
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`error: ${msg}\n  hint: run \`alki --help\` or \`alki <command> --help\` for the options\n`);
      process.exit(EXIT.usage);
    })
    .parseAsync();
} catch (e) {
  removePartialDirs();
  process.exitCode = reportError(e, verbose, json);
}
