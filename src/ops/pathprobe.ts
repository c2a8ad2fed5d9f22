/**
 * The forwarding-path probe for checks `via: forwarding` that cannot use a kernel socket:
 * src/ops/path-probe.py (python3, standard library, raw and AF_PACKET sockets, which node
 * lacks) sends the packet the data plane would send for a client's flow (Tun: IP-in-IP to the
 * realserver; DR: a frame to the realserver's MAC with the inner packet unchanged; inner
 * SRC:SPORT -> VIP:PORT, a TCP SYN or a UDP datagram) and reads the realserver's direct answer
 * from the VIP off the interface, before the IP layer (so it works with the VIP local on the
 * director, where the kernel would drop the answer as a martian). Run with execFile (argv, never
 * a shell, python3 -I -S: no user site, no site import, quicker start); it waits the check's
 * timeout from its send, and is killed 2 s after that as a safety net.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProbeResult } from './probes.js';

export interface PathProbe {
  mode: 'tun' | 'dr';
  proto: 'tcp' | 'udp';
  /** Interface the answer arrives on (and, for dr, the frame leaves by). */
  dev: string;
  rip: string;
  /** dr: the realserver's MAC, as the data plane sends to it. */
  mac?: string;
  source: string;
  sport: number;
  vip: string;
  port: number;
  timeoutMs: number;
  payload?: string;
  expect?: string;
}

let scriptPath: string | undefined;

/** src/ops/path-probe.py of this installation (from src/ops or dist/src/ops). */
export function pathProbeScript(): string {
  if (scriptPath) return scriptPath;
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(d, 'src', 'ops', 'path-probe.py');
    if (existsSync(p)) return (scriptPath = p);
    if (existsSync(join(d, 'path-probe.py'))) return (scriptPath = join(d, 'path-probe.py'));
    if (dirname(d) === d) throw new Error('src/ops/path-probe.py not found');
    d = dirname(d);
  }
}

/** The helper's argv (without python3 itself). */
export function pathProbeArgs(p: PathProbe): string[] {
  // The helper waits the check's timeout from its send (the interpreter's start is not counted).
  const args = ['-I', '-S', pathProbeScript(), p.mode, p.proto, p.dev, p.rip, p.mac ?? '-', p.source, String(p.sport), p.vip, String(p.port), String(p.timeoutMs)];
  if (p.proto === 'udp') {
    args.push(Buffer.from(p.payload ?? '', 'utf8').toString('hex'));
    if (p.expect !== undefined) args.push(Buffer.from(p.expect, 'utf8').toString('hex'));
  }
  return args;
}

/** LVS_XDP_PYTHON, else /usr/bin/python3 (no version-manager shim to start), else python3 on PATH. */
export function defaultPython(): string {
  return process.env.LVS_XDP_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

/** Slack for the interpreter's start on a busy host: the helper keeps the check's timeout itself. */
const START_SLACK_MS = 2000;

export function probePath(p: PathProbe, python = defaultPython()): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let args: string[];
    try {
      args = pathProbeArgs(p);
    } catch (e) {
      resolve({ ok: false, detail: `path probe: ${(e as Error).message}` });
      return;
    }
    execFile(python, args, { timeout: p.timeoutMs + START_SLACK_MS, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 64 * 1024 }, (err, stdout) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        const r = JSON.parse(line) as { ok?: unknown; detail?: unknown };
        if (typeof r.ok === 'boolean' && typeof r.detail === 'string') {
          resolve({ ok: r.ok, detail: r.detail });
          return;
        }
      } catch {
        // no JSON: below
      }
      const e = err as (NodeJS.ErrnoException & { killed?: boolean }) | null;
      resolve({ ok: false, detail: e?.killed ? `path probe: killed after ${p.timeoutMs + START_SLACK_MS} ms` : `path probe: ${e?.code ?? e?.message ?? 'no result'}` });
    });
  });
}
