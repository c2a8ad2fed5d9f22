/**
 * The lab's namespaces as a set: finding labs (by prefix, including those of killed runs),
 * removing one completely (processes, namespaces, the lvs-xdp state that belonged to them), and
 * the exit and signal handlers that remove labs on the way out. Synchronous, so that exit and
 * signal handlers can use it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_RUN_DIR, BPFFS, LVS_RUN_DIR, NAME_RE } from './paths.js';

function ipSync(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

/** Namespaces (from /run/netns) whose name starts with `${prefix}-`. */
export function labNamespaces(prefix: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(`${prefix}-`)).sort();
  } catch {
    return [];
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function pidsIn(ns: string): number[] {
  return ipSync(['netns', 'pids', ns]).split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number).filter((p) => p !== process.pid);
}

/**
 * Removes every lab namespace named `${prefix}-*`, the processes in them, their lvs-xdp state
 * directories (also those of namespaces that are gone already) and the lab directory.
 * Synchronous and idempotent. Returns the namespaces removed.
 */
export function removeLab(prefix: string): string[] {
  if (!NAME_RE.test(prefix)) throw new Error(`bad lab prefix ${JSON.stringify(prefix)}`);
  const namespaces = labNamespaces(prefix);
  // Kill first: a namespace with processes outlives `ip netns del` (and so would its servers).
  for (let round = 0; round < 20; round++) {
    const pids = namespaces.flatMap(pidsIn);
    if (pids.length === 0) break;
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    sleepSync(20);
  }
  for (const ns of namespaces) ipSync(['netns', 'del', ns]);
  // State of this lab's namespaces, including namespaces deleted by an earlier, killed teardown.
  for (const base of [BPFFS, LVS_RUN_DIR]) {
    let entries: string[] = [];
    try {
      entries = readdirSync(base);
    } catch {
      continue;
    }
    for (const f of entries) {
      const at = f.lastIndexOf('@');
      if (at >= 0 && f.slice(at + 1).startsWith(`${prefix}-`)) rmSync(join(base, f), { recursive: true, force: true });
    }
  }
  rmSync(join(LAB_RUN_DIR, prefix), { recursive: true, force: true });
  return namespaces;
}

/** Labs (prefixes) whose namespaces or directories exist, among those starting with `start`. */
export function existingLabs(start: string): string[] {
  const out = new Set<string>();
  try {
    for (const d of readdirSync(LAB_RUN_DIR)) if (d.startsWith(start)) out.add(d);
  } catch {
    // none
  }
  for (const ns of labNamespaces(start.replace(/-$/, ''))) {
    const m = /^(.*)-[a-z0-9]+$/.exec(ns);
    if (m && m[1]!.startsWith(start)) out.add(m[1]!);
  }
  return [...out].sort();
}

/** For tests: a unique prefix `lvsl-lab-TAG-PID`, after removing labs of dead test processes. */
export function testPrefix(tag: string): string {
  for (const lab of existingLabs('lvsl-lab-')) {
    const m = /^lvsl-lab-[a-z0-9]+-(\d+)$/.exec(lab);
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (!alive) removeLab(lab);
  }
  return `lvsl-lab-${tag}-${process.pid}`;
}

