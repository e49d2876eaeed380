import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AlkiError } from '@alki/core';

/** Checks before a long run that `path` can be written at its end: its folder exists and is writable, it is no folder. */
export function assertWritableFile(path: string, flag: string): void {
  if (path.trim() === '') throw new AlkiError('BAD_OPTION', `${flag} is empty`, `give a file name, e.g. ${flag} report.html`);
  const abs = resolve(path);
  if (existsSync(abs) && !statSync(abs).isFile())
    throw new AlkiError('BAD_OPTION', `${flag} ${path} is a folder or a device, not a file`, `give a file name, e.g. ${flag} report.html`);
  try {
    accessSync(existsSync(abs) ? abs : dirname(abs), constants.W_OK);
  } catch {
    throw new AlkiError(
      'BAD_OPTION',
      `${flag} ${path} cannot be written (its folder is missing or read-only)`,
      'choose a path in a folder you can write to; nothing was measured yet',
    );
  }
}
