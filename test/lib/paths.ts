/** Paths for tests that run from dist/: the repository root holds package.json and bpf/. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json')) || !existsSync(join(d, 'bpf'))) {
    if (dirname(d) === d) throw new Error('repository root not found');
    d = dirname(d);
  }
  return d;
}
