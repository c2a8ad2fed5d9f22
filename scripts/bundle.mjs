#!/usr/bin/env node
/**
 * Bundles the compiled CLI (dist/src/cli/main.js and everything it imports, packages included)
 * into dist/cli/, the code bin/lvs-xdp.js runs. Why: a command used to load ~90 ES modules one
 * by one, and resolving, reading and linking them cost ~15 ms of a ~120 ms `-e` (README, "What
 * the numbers say"). The commands' lazy imports stay lazy: they become chunks (--splitting).
 * The library (dist/src/index.js) and the tests keep using the unbundled modules.
 *
 * Left outside: the native addon (loaded by path), pino and pino-pretty (pino's transports load
 * their own files by path in worker threads) and msgpackr's optional native extractor.
 */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

const out = 'dist/cli';
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { main: 'dist/src/cli/main.js' },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  external: ['*.node', 'pino', 'pino-pretty', 'msgpackr-extract'],
  // Packages published as CommonJS call require() for node's own modules and may read
  // __filename (write-file-atomic names its temporary files by it): ESM has neither.
  banner: {
    js: [
      "import { createRequire as lvsBundleRequire } from 'node:module';",
      "import { fileURLToPath as lvsBundlePath } from 'node:url';",
      'const require = lvsBundleRequire(import.meta.url);',
      'const __filename = lvsBundlePath(import.meta.url);',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join(' '),
  },
  logLevel: 'warning',
});
