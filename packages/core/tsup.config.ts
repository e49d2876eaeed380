import { defineConfig } from 'tsup';
import { libraryOptions } from '../../tsup.shared.js';

// Two entries: the browser-safe core, and `./node` for file-system helpers.
export default defineConfig({ ...libraryOptions, entry: ['src/index.ts', 'src/node.ts'] });
