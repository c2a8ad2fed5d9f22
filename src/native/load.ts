/**
 * Loads build/Release/lvs_bpf.node once. ESM cannot import .node files, so createRequire does it.
 * LVS_XDP_NATIVE=/path/to/lvs_bpf.node overrides the search (e.g. a Debug build).
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { inInstall } from '../install-root.js';
import { existsSync } from 'node:fs';
import { LvsError, ExitCode } from '../errors.js';
import type { NativeBinding } from './binding.js';

const requireAddon = createRequire(import.meta.url);
let cached: NativeBinding | undefined;

/** Where the addon may be: the installation's build/ (node-gyp's Release, else Debug). */
function candidates(): string[] {
  const out: string[] = [];
  const env = process.env['LVS_XDP_NATIVE'];
  if (env) out.push(resolve(env));
  for (const kind of ['Release', 'Debug']) out.push(inInstall('build', kind, 'lvs_bpf.node'));
  return out;
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
      cached = requireAddon(path) as NativeBinding;
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
