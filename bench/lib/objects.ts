/**
 * The bench-only BPF objects (bench/bpf/*.o) are not built by scripts/setup.sh: whoever needs
 * them builds them here first (make is quick when they are up to date).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

let built = false;

/** Path of a bench BPF object, built on first use in this process. */
export function benchObject(name: string): string {
  const dir = fileURLToPath(new URL('../../../bench/bpf/', import.meta.url));
  if (!built) {
    execFileSync('make', ['-s', '-C', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    built = true;
  }
  return `${dir}${name}`;
}
