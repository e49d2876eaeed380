import type { Argv } from 'yargs';
import { PRESETS, type HardwarePreset } from '@alki/hardware-presets';
import { detectDevice } from '@alki/hardware-presets/node';
import { keyValues, type OutputFlags } from '../output.js';

const gib = (b?: number) => (b === undefined ? '?' : `${(b / 2 ** 30).toFixed(1)} GiB`);

/** One preset as the terminal shows it: what it is, then each recommendation with its reason. */
export function describePreset(p: HardwarePreset): string {
  const r = p.recommended;
  const rows: [string, string][] = [
    ['preset', `${p.id} — ${p.name}`],
    ['cpu', `${p.arch}, ${p.cores} cores, ${p.features.join(' ')}`],
    [
      'memory',
      `${p.memoryGiB} GiB assumed (sold with ${p.memoryVariantsGiB.join(' / ')} GiB; --memory overrides), ${Math.round(p.usableMemoryFraction * 100)}% usable${p.addressSpaceLimitGiB ? `, ${p.addressSpaceLimitGiB} GiB address-space limit` : ''}`,
    ],
    ['providers', p.executionProviders.join(', ')],
    ...Object.entries(r).map(([k, v]) => [k, `${v.value} — ${v.why}`] as [string, string]),
  ];
  return [keyValues(rows), ...(p.notes ?? []).map((n) => `note: ${n}`)].join('\n');
}

export function presetsCommand(y: Argv) {
  return y.command(
    'presets',
    'list the hardware presets (targets) and what each recommends',
    (a) => a.example('alki presets --json', ''),
    (args) => {
      const flags = args as OutputFlags;
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(PRESETS, (_, v) => (v instanceof RegExp ? v.source : v), 2)}\n`);
        return;
      }
      const rows = PRESETS.map((p) => [
        p.id,
        p.arch,
        String(p.cores),
        `${p.memoryVariantsGiB.join('/')} GiB`,
        p.executionProviders.join(','),
        `${p.recommended.method.value} int${p.recommended.bits.value} b${p.recommended.blockSize.value}`,
        `ctx ${p.recommended.context.value}`,
      ]);
      const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
      process.stdout.write(
        `${rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ')).join('\n')}\n\nalki presets --json shows every field with its reason; docs/hardware.md explains them.\n`,
      );
    },
  );
}

export function detectCommand(y: Argv) {
  return y.command(
    'detect',
    'detect this machine and the closest hardware preset, saying which facts decided',
    (a) => a.example('alki detect --json', ''),
    (args) => {
      const flags = args as OutputFlags;
      const d = detectDevice();
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ preset: d.preset.id, cpu: d.cpu, cores: d.cores, totalMemoryBytes: d.totalMemoryBytes, availableMemoryBytes: d.availableMemoryBytes, os: d.os, decidedBy: d.decidedBy, notes: d.notes }, null, 2)}\n`,
        );
        return;
      }
      const rows: [string, string][] = [
        ['preset', `${d.preset.id} — ${d.preset.name}`],
        ['cpu', `${d.cpu.model || '?'} (${d.cpu.arch}: ${d.cpu.features.join(' ') || 'none of the listed features'})`],
        ['cores', String(d.cores)],
        ['memory', `${gib(d.totalMemoryBytes)} total, ${gib(d.availableMemoryBytes)} available`],
        ['os', d.os],
      ];
      process.stdout.write(`${keyValues(rows)}\ndecided by:\n${d.decidedBy.map((x) => `  ${x}`).join('\n')}\n${d.notes.map((n) => `note: ${n}\n`).join('')}`);
    },
  );
}
