/**
 * Loads build/Release/lvs_bpf.node once. ESM cannot import .node files, so createRequire does it.
 * LVS_XDP_NATIVE=/path/to/lvs_bpf.node overrides the search (e.g. a Debug build).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { LvsError, ExitCode } from '../errors.js';
import type { NativeBinding } from './binding.js';

const require = createRequire(import.meta.url);
let cached: NativeBinding | undefined;

/** Where the addon may be: from src/native (ts run directly) or dist/src/native (compiled). */
function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const out: string[] = [];
  const env = process.env['LVS_XDP_NATIVE'];
  if (env) out.push(resolve(env));
  for (const up of ['../..', '../../..']) {
    for (const kind of ['Release', 'Debug']) out.push(resolve(here, up, 'build', kind, 'lvs_bpf.node'));
  }
  return [...new Set(out)];
}

export function loadNative(): NativeBinding {
  if (cached) return cached;
  const tried: string[] = [];
  let lastError: unknown;
  for (const path of candidates()) {
    if (!existsSync(path)) {
      tried.push(`${path} (missing)`);
      continue;
    }
    try {
      cached = require(path) as NativeBinding;
      return cached;
    } catch (e) {
      lastError = e;
      tried.push(`${path} (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    }
  }
  throw new LvsError(
    `cannot load the native binding lvs_bpf.node; tried:\n  ${tried.join('\n  ')}`,
    'NATIVE_UNAVAILABLE',
    ExitCode.FAILURE,
    {
      hint: 'run `npm run setup` to build it (needs clang, libbpf-dev, libelf-dev, zlib1g-dev and node headers)',
      cause: lastError,
    },
  );
}
