/**
 * Who else answers ARP / ND for a VIP on a link (`lvs-xdp doctor`): src/ops/neigh-probe.py
 * (python3, standard library: node has no AF_PACKET socket) sends an ARP request / neighbour
 * solicitation for each address from the interface and prints every answer. The frames leave
 * through a packet socket, so this host's own stack never sees them: the VIP need not be
 * configured here, and this host's own answer is never among the results. Run with
 * execFileSync (argv, never a shell); doctor is a one-shot command.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { canonicalAddress } from '../model/address.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultPython } from './pathprobe.js';

export interface NeighAnswer {
  addr: string;
  family: 4 | 6;
  mac: string;
}

let scriptPath: string | undefined;

/** src/ops/neigh-probe.py of this installation (from src/ops or dist/src/ops). */
export function neighProbeScript(): string {
  if (scriptPath) return scriptPath;
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(d, 'src', 'ops', 'neigh-probe.py');
    if (existsSync(p)) return (scriptPath = p);
    if (dirname(d) === d) throw new Error('src/ops/neigh-probe.py not found');
    d = dirname(d);
  }
}

export interface NeighProbe {
  dev: string;
  addrs: readonly string[];
  timeoutMs: number;
  /** ARP sender address (0.0.0.0: an ARP probe) and ND source (link-local, or ::). */
  src4: string;
  src6: string;
}

/** Every (address, MAC) that answered on `dev` within the timeout; throws when the helper fails. */
export function probeNeighbours(p: NeighProbe, python = defaultPython()): NeighAnswer[] {
  if (p.addrs.length === 0) return [];
  const out = execFileSync(python, ['-I', '-S', neighProbeScript(), p.dev, String(p.timeoutMs), p.src4, p.src6, ...p.addrs], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: p.timeoutMs + 5000, killSignal: 'SIGKILL',
  });
  return out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as NeighAnswer);
}

/**
 * Gratuitous ARP / unsolicited neighbour advertisements for `addrs` from `dev` (its MAC now owns
 * them), as keepalived sends on taking a VIP over; throws when the helper fails.
 */
export function announceNeighbours(dev: string, addrs: readonly string[], python = defaultPython()): void {
  if (addrs.length === 0) return;
  execFileSync(python, ['-I', '-S', neighProbeScript(), '--announce', dev, ...addrs], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000, killSignal: 'SIGKILL',
  });
}

/** The VIPs that are addresses of `iface` here (canonical forms): the ones this director owns on that link. */
export function localVipsOn(vips: readonly string[], iface: string, ifaces = networkInterfaces()): string[] {
  const here = new Set((ifaces[iface] ?? []).map((a) => canonicalAddress(a.address.replace(/%.*$/, ''))));
  return [...new Set(vips.map((v) => canonicalAddress(v)).filter((v): v is string => v !== null && here.has(v)))];
}
