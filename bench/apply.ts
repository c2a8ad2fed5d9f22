/**
 * Applying a one-realserver change to a running director, and the CLI's resident memory during
 * an apply: bench/apply-child.ts in a network namespace of its own (lvsb-apply-<pid>), entered
 * with nsenter --net so the host's bpffs is used; the namespace is removed afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ApplyBench {
  config: { services: number; reals: number; tableSize: number };
  initialMs: number;
  apply: { medianMs: number; minMs: number; maxMs: number; samples: number };
  cli: { ms: number; peakRssKiB: number; exit: number | null }[];
}

export function runApplyBench(opts: { services: number; reals: number; tableSize: number; short?: boolean }): ApplyBench {
  const ns = `lvsb-apply-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const child = fileURLToPath(new URL('./apply-child.js', import.meta.url));
    const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, child, JSON.stringify(opts)], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`apply bench failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as ApplyBench;
    if (out.cli.some((c) => c.exit !== 0)) throw new Error(`apply bench: the CLI failed: ${r.stderr.slice(-2000)}`);
    return out;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
