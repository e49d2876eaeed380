import { defineConfig, mergeConfig } from 'vitest/config';
import shared from './vitest.shared.js';

/**
 * `pnpm test:isa`: the tests whose numbers depend on onnxruntime's CPU kernels, run by tools/test-isa.mjs under
 * qemu user-mode emulation of an older CPU. Threads, not forks: a forked worker would start a native node,
 * outside the emulator.
 */
export default mergeConfig(
  shared,
  defineConfig({
    test: {
      pool: 'threads',
      maxWorkers: 1,
      fileParallelism: false,
      testTimeout: 900_000,
      hookTimeout: 900_000,
      include: [
        'packages/hardware-presets/test/cpu.test.ts',
        // int8: the kernel probe, every W8A8 format, SmoothQuant on stories260K and on a foreign graph
        'packages/runtime/test/int8-kernel.test.ts',
        'packages/bundle/test/machine-check.test.ts',
        'packages/quantizers/test/w8a8.test.ts',
        'packages/quantizers/test/foreign.test.ts',
        // MatMulNBits at accuracy levels 0 and 4, 4 and 8 bits, against the JS reference
        'packages/quantizers/test/rtn.test.ts',
        // attention (GroupQueryAttention and the portable path) and the stories260K run.c reference, both flavours
        'packages/runtime/test/generate.test.ts',
      ],
    },
  }),
);
