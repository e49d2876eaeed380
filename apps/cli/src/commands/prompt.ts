import { readFileSync, statSync } from 'node:fs';
import { AlkiError } from '@alki/core';

/** The longest prompt read from a file or stdin: far beyond any context Alki runs, small enough to hold. */
const MAX_PROMPT_BYTES = 16 * 1024 * 1024;

/**
 * The prompt of `run`: --prompt, or --prompt-file (a regular UTF-8 file, or "-" for standard input) — long prompts
 * must not travel on the command line, which onnxruntime cannot survive beyond ~28 KB (see index.ts).
 */
export async function readPrompt(prompt: string | undefined, file: string | undefined): Promise<string> {
  if (prompt !== undefined && file !== undefined) throw new AlkiError('BAD_OPTION', '--prompt and --prompt-file were both given', 'give one of them');
  if (file === undefined) return prompt ?? '';
  const bytes = file === '-' ? await readStdin() : readRegularFile(file);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (text.includes('\u0000') || (text.length > 0 && (text.match(/\uFFFD/g)?.length ?? 0) / text.length > 0.01)) {
    throw new AlkiError('BAD_INPUT', `${file === '-' ? 'standard input' : file} is not UTF-8 text`, 'give the prompt as a UTF-8 text file');
  }
  return text;
}

function readRegularFile(path: string): Uint8Array {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new AlkiError('NOT_FOUND', `prompt file not found: ${path}`, 'check the path of --prompt-file');
  }
  if (!st.isFile()) throw new AlkiError('BAD_INPUT', `--prompt-file ${path} is not a regular file`, 'give a text file, or "-" to read standard input');
  if (st.size > MAX_PROMPT_BYTES)
    throw new AlkiError(
      'BAD_INPUT',
      `--prompt-file ${path} is ${st.size} bytes, more than the ${MAX_PROMPT_BYTES} Alki reads`,
      'give a shorter prompt: a model reads at most its context',
    );
  return readFileSync(path);
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of process.stdin) {
    n += (chunk as Buffer).length;
    if (n > MAX_PROMPT_BYTES)
      throw new AlkiError('BAD_INPUT', `standard input is longer than the ${MAX_PROMPT_BYTES} bytes Alki reads as a prompt`, 'give a shorter prompt');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
