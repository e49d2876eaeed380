import { defineConfig } from 'tsup';
import { libraryOptions } from '../../tsup.shared.js';

// Two entries: Node (onnxruntime-node, files) and `./web`, which imports no Node built-ins.
export default defineConfig({ ...libraryOptions, entry: ['src/index.ts', 'src/web.ts'] });
