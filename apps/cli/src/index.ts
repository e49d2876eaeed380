import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runInterruptCleanups } from '@alki/core';
import { enableGarbageCollection } from '@alki/core/node';
import { buildCommand } from './commands/build.js';
import { infoCommand } from './commands/info.js';
import { runCommand } from './commands/run.js';
import { benchCommand } from './commands/bench.js';
import { compareCommand } from './commands/compare.js';
import { detectCommand, presetsCommand } from './commands/hardware.js';
import { planCommand } from './commands/plan.js';
import { EXIT, reportError } from './errors.js';
import pkg from '../package.json';

// yargs reads a lone "-" as a positional: `--prompt-file -` (standard input) is joined into one token first.
const argv = hideBin(process.argv).flatMap((a, i, all) =>
  a === '-' && all[i - 1] === '--prompt-file' ? [] : a === '--prompt-file' && all[i + 1] === '-' ? ['--prompt-file=-'] : [a],
);
const json = argv.includes('--json');
const verbose = argv.includes('--verbose');
const controller = new AbortController();
// The process-wide switch the libraries' garbage meters need (onnxruntime outputs are memory V8 does not count).
enableGarbageCollection();

// onnxruntime-node 1.30 segfaults creating a session when the process's command line is ~28 KB or longer (measured:
// 28,000 characters pass, 29,000 crash). Refuse long command lines before any session exists.
const ARGV_LIMIT = 16 * 1024;
const argvBytes = process.argv.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
if (argvBytes > ARGV_LIMIT) {
  reportUsage(
    `the command line is ${argvBytes.toLocaleString('en-US')} bytes long; onnxruntime crashes on command lines near 28 KB, so Alki accepts at most ${ARGV_LIMIT.toLocaleString('en-US')}`,
    'pass a long prompt from a file with --prompt-file FILE, or on standard input with --prompt-file -',
  );
}

// `alki info … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// Ctrl-C or SIGTERM: stop, remove temporary folders and child processes, exit 130 / 143.
let interrupted = false;
for (const [signal, code] of [
  ['SIGINT', EXIT.interrupted],
  ['SIGTERM', EXIT.terminated],
] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(code);
    interrupted = true;
    controller.abort();
    runInterruptCleanups();
    process.stderr.write(`\ninterrupted (${signal}): temporary files removed, no bundle was written\n`);
    process.exit(code);
  });
}

function reportUsage(message: string, hint: string): never {
  if (json) process.stdout.write(`${JSON.stringify({ error: { code: 'BAD_OPTION', message, hint } }, null, 2)}\n`);
  else process.stderr.write(`error: ${message}\n  hint: ${hint}\n`);
  process.exit(EXIT.usage);
}

let cli: Argv = yargs(argv)
  .scriptName('alki')
  .usage('$0 <command> [options]\n\nTake a HuggingFace language model to an edge device: export, quantize, bundle, run.')
  .option('json', { type: 'boolean', default: false, global: true, describe: 'machine-readable output on stdout' })
  .option('quiet', { type: 'boolean', default: false, global: true, describe: 'no progress output' })
  .option('verbose', { type: 'boolean', default: false, global: true, describe: 'stack traces on errors' });
// A flag given twice keeps its last value (scripts append flags to defaults), except the repeatable ones: yargs
// would otherwise turn `--prompt a --prompt b` into an array that every single-valued option then misreads.
const REPEATABLE = new Set(['exclude', 'stop-token-ids', 'stopTokenIds']);
cli = cli.middleware((a) => {
  for (const key of Object.keys(a)) if (key !== '_' && !REPEATABLE.has(key) && Array.isArray(a[key])) a[key] = (a[key] as unknown[]).at(-1);
}, true);
cli = buildCommand(cli, controller.signal);
cli = runCommand(cli, controller.signal);
cli = infoCommand(cli);
cli = benchCommand(cli, controller.signal);
cli = compareCommand(cli, controller.signal);
cli = planCommand(cli, controller.signal);
cli = presetsCommand(cli);
cli = detectCommand(cli);

try {
  await cli
    .demandCommand(1, 'name a command: build, run, info, bench, compare, plan, presets or detect')
    .strict()
    .recommendCommands()
    .help()
    .version(pkg.version)
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err;
      reportUsage(msg, 'run `alki --help` or `alki <command> --help` for the options');
    })
    .parseAsync();
} catch (e) {
  runInterruptCleanups();
  process.exitCode = reportError(e, verbose, json);
}
