/**
 * LVS-NAT per-packet cost (bench/dataplane.ts's NAT cases). A reply takes its next hop from the
 * kernel's FIB, so the cases run in a network namespace of their own (lvsb-nat-<pid>, removed
 * afterwards also on failure) whose FIB resolves the benchmark's client on c0: the child
 * (bench/nat-child.ts) measures them with the floors of the same run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CaseResult } from './dataplane.js';

export async function runNatBench(opts: { rounds: number; perRound: number }): Promise<CaseResult[]> {
  const ns = `lvsb-nat-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const child = fileURLToPath(new URL('./nat-child.js', import.meta.url));
    const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, child, JSON.stringify(opts)], { encoding: 'utf8', timeout: 900_000 });
    if (r.status !== 0) throw new Error(`NAT bench failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as CaseResult[];
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
