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

/** qemu user-mode emulation of x86-64, when installed: runs the CLI on onnxruntime's kernels of another CPU. */
export const qemuX86 = spawnSync('qemu-x86_64-static', ['--version']).status === 0 ? 'qemu-x86_64-static' : undefined;

/** Runs the built `alki` binary; with `emulate`, under qemu as that x86-64 CPU model (e.g. "Haswell"). */
export function alki(args: string[], opts: { cwd?: string; env?: Record<string, string>; emulate?: string; input?: string } = {}): CliResult {
  const command = opts.emulate ? [qemuX86!, '-cpu', opts.emulate, process.execPath] : [process.execPath];
  const r = spawnSync(command[0], [...command.slice(1), cliPath, ...args], {
    cwd: opts.cwd,
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    input: opts.input,
    timeout: 300_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
