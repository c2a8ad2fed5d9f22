/**
 * The installation root: the nearest directory above this module with package.json and bpf/.
 * Found by walking up, not by a fixed `../..`, because the same module runs at different depths:
 * from dist/src/... (the library, the tests) and from the CLI's bundle in dist/cli/.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function installRoot(): string {
  if (root) return root;
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json')) || !existsSync(join(d, 'bpf'))) {
    if (dirname(d) === d) throw new Error(`lvs-xdp installation root not found above ${fileURLToPath(import.meta.url)}`);
    d = dirname(d);
  }
  return (root = d);
}

/** A path inside the installation root. */
export const inInstall = (...parts: string[]): string => join(installRoot(), ...parts);
