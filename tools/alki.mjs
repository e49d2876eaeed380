#!/usr/bin/env node
// `pnpm alki …` from a fresh clone: (re)build the CLI and what it depends on
// when sources changed (turbo's cache makes this ~1 s otherwise), then run it.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = spawnSync('pnpm', ['exec', 'turbo', 'run', 'build', '--filter=@alki/cli...', '--output-logs=errors-only'], {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
});
if (build.status !== 0) {
  process.stderr.write(`${build.stdout ?? ''}${build.stderr ?? ''}\nerror: building the alki CLI failed (see above)\n`);
  process.exit(1);
}
// pnpm runs scripts from the workspace root; paths on the command line are relative to where the user typed them.
const run = spawnSync(process.execPath, [join(root, 'apps/cli/dist/index.js'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: process.env.INIT_CWD ?? process.cwd(),
});
process.exit(run.status ?? (run.signal === 'SIGINT' ? 130 : 1));
