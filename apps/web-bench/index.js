// The folder that holds the built page (index.html, app.js, ort/): what `alki bench --browser` serves.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const webBenchDir = join(dirname(fileURLToPath(import.meta.url)), 'dist');
