/**
 * What the lab end-to-end tests share: a lab per test file (built in `before`, removed in `after`
 * and on signals), the lvs-xdp CLI run as a user would (nsenter --net=... lvs-xdp ...), and the
 * balance checks.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { Lab, installCleanupHandlers, testPrefix, cliArgv, spawnIn, labEnv, waitFor, type LabSpec, type RealserverHost } from '../../src/lab/index.js';
import { serviceLabels } from '../../src/ops/metrics.js';

export const NEEDS_ROOT = process.getuid?.() !== 0 ? 'needs root (network namespaces, XDP)' : false;

/** Builds a lab for this test file; `ready` runs after it is up (director, realservers...). */
export function useLab(tag: string, spec: Omit<LabSpec, 'prefix'>, ready?: (lab: Lab) => Promise<void>): () => Lab {
  let lab: Lab | undefined;
  before(async () => {
    if (NEEDS_ROOT) return;
    installCleanupHandlers();
    lab = await Lab.create({ ...spec, prefix: testPrefix(tag), ...(process.env.LVS_TEST_VERBOSE ? { log: (l: string) => console.log(l) } : {}) });
    try {
      if (ready) await ready(lab);
    } catch (e) {
      lab.destroy();
      throw e;
    }
  }, { timeout: 120_000 });
  after(() => lab?.destroy());
  return () => {
    if (!lab) throw new Error('lab not built');
    return lab;
  };
}

/** Attaches the director and sets up every realserver for `modes` (VIPs of the lab), starts the servers. */
export async function standardSetup(lab: Lab, modes: { dr?: boolean; tun?: boolean }, servers: readonly RealserverHost[] = lab.realservers): Promise<void> {
  await lab.attachDirector({ mode: 'native' });
  const v = lab.vips;
  await Promise.all(servers.map(async (r) => {
    if (modes.dr) await lab.setupRealserver(r, 'dr', [v.dr4, v.dr6]);
    if (modes.tun) await lab.setupRealserver(r, 'tun', [v.tun4, v.tun6]);
  }));
  await lab.startServers({ udpVips: [...(modes.dr ? [v.dr4, v.dr6] : []), ...(modes.tun ? [v.tun4, v.tun6] : [])] }, servers);
}

export function svc(vip: string, port = 80): string {
  return vip.includes(':') ? `[${vip}]:${port}` : `${vip}:${port}`;
}

export function url(vip: string, path = '/'): string {
  return `http://${vip.includes(':') ? `[${vip}]` : vip}${path}`;
}

/** ipvsadm rule lines for one service: `-A` plus one `-a` per realserver. */
export function serviceRules(proto: 'tcp' | 'udp', vip: string, port: number, sched: string, reals: { addr: string; method: 'g' | 'i'; weight: number }[]): string {
  const f = proto === 'tcp' ? '-t' : '-u';
  return [`-A ${f} ${svc(vip, port)} -s ${sched}`, ...reals.map((r) => `-a ${f} ${svc(vip, port)} -r ${r.addr} -${r.method} -w ${r.weight}`)].join('\n');
}

/**
 * Every realserver named in `weights` got between half and double its weighted share of `counts`
 * (and nobody else got anything).
 */
export function assertShares(counts: Record<string, number>, weights: Record<string, number>, what: string): void {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const wsum = Object.values(weights).reduce((a, b) => a + b, 0);
  const report = Object.entries(weights).map(([n, w]) => `${n} w${w}: ${counts[n] ?? 0} (share ${(total * w / wsum).toFixed(0)})`).join(', ');
  for (const name of Object.keys(counts)) assert.ok(name in weights, `${what}: ${name} answered but is not weighted (${report})`);
  for (const [name, w] of Object.entries(weights)) {
    const share = (total * w) / wsum;
    const got = counts[name] ?? 0;
    if (w === 0) {
      assert.equal(got, 0, `${what}: ${name} has weight 0 but got ${got} (${report})`);
      continue;
    }
    assert.ok(got >= share / 2 && got <= share * 2, `${what}: ${name} got ${got}, outside [${(share / 2).toFixed(0)}, ${(share * 2).toFixed(0)}] (${report})`);
  }
}

/** Counts names; '' (failed) under 'FAILED'. */
export function tally(names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n || 'FAILED'] = (out[n || 'FAILED'] ?? 0) + 1;
  return out;
}

/**
 * Starts `lvs-xdp run ARGS` (with --log-format json) in the lab director's namespace; each JSON
 * log line is pushed onto `logs` (a line that is not JSON as `{ raw }`), and a failed exit as
 * `{ event: 'exited', code, err }`.
 */
export function startRun(lab: Lab, args: string[], env: Record<string, string>, logs: Record<string, unknown>[]): { child: ChildProcess; stderr: () => string } {
  const [node, argv] = cliArgv(['run', ...args]);
  const child = spawnIn(lab.director.ns, node, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: labEnv(env) });
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      try {
        logs.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        logs.push({ raw: l });
      }
    }
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  child.on('exit', (code) => { if (code !== 0 && code !== null) logs.push({ event: 'exited', code, err }); });
  return { child, stderr: () => err };
}

/** startRun, then waits until `run` listens (its JSON log says so); fails with its stderr if it exited. */
export async function startRunListening(lab: Lab, args: string[], env: Record<string, string>, logs: Record<string, unknown>[], boundMs: number): Promise<ChildProcess> {
  const started = startRun(lab, args, env, logs);
  await waitFor('run listening', () => logs.find((l) => l.event === 'listening' || l.event === 'exited'), boundMs, 50);
  assert.equal(logs.find((l) => l.event === 'exited'), undefined, `run exited: ${started.stderr()}`);
  return started.child;
}

/** A realserver's (or, without one, a service's) labels as /metrics writes them: `{protocol="tcp",vip="...",port="80",...}`. */
export function seriesLabels(service: string, realserver?: string): string {
  const l = serviceLabels(service);
  return `{protocol="${l.protocol}",vip="${l.vip}",port="${l.port}"${realserver === undefined ? '' : `,realserver="${realserver}"`}}`;
}
