import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../../tools/fixtures/index.js';

export const cliPath = join(repoRoot, 'apps/cli/dist/index.js');
if (!existsSync(cliPath)) throw new Error(`build the CLI first (pnpm build): ${cliPath} is missing`);

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `alki` binary. */
export function alki(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): CliResult {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    cwd: opts.cwd,
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: 300_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
