/**
 * Realserver (DR) and next-hop (Tun) MAC resolution from the kernel's routing and neighbour
 * tables, through iproute2's JSON output (execFile, never a shell). A missing or failed
 * neighbour entry is probed once (ping) and read again.
 *
 * Two kinds of failure: a configuration error (no route at all, a DR realserver routed via a
 * gateway) is thrown for every realserver at once, naming each; a next hop that does not answer
 * ARP/ND is a realserver that is down, which IPVS accepts: it is returned as unresolved, to be
 * installed without table slots and resolved again later.
 *
 * Each resolution is written once, as a generator of the commands it needs; it runs either
 * synchronously (the CLI's one-shot paths) or asynchronously (`lvs-xdp run` and every change:
 * nothing that serves probes, metrics or the status page waits for a spawn).
 */
import { execFile, execFileSync } from 'node:child_process';
import { ConfigError } from '../errors.js';
import { familyOf } from '../model/address.js';
import { serviceId, type VirtualService, type Realserver, type DirectorConfig } from '../model/types.js';
import { realId, type L2Next } from '../dataplane/compile.js';
import { acceptedSet, type AcceptedMac, type LinkDesc } from '../dataplane/l2addrs.js';
import { dumpLinks } from './rtnl.js';

export interface RouteInfo { dev: string; gateway?: string; prefsrc?: string }

/** One command a resolution needs; its stdout comes back (undefined when it failed). */
interface Cmd { cmd: 'ip' | 'ping'; args: string[]; timeoutMs?: number }
type Flow<T> = Generator<Cmd, T, string | undefined>;

function execSync(c: Cmd): string | undefined {
  try {
    return execFileSync(c.cmd, c.args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...(c.timeoutMs ? { timeout: c.timeoutMs } : {}) });
  } catch {
    return undefined;
  }
}

function execAsync(c: Cmd): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(c.cmd, c.args, { encoding: 'utf8', ...(c.timeoutMs ? { timeout: c.timeoutMs } : {}) }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

function runSync<T>(f: Flow<T>): T {
  let r = f.next();
  while (!r.done) r = f.next(execSync(r.value));
  return r.value;
}

async function runAsync<T>(f: Flow<T>): Promise<T> {
  let r = f.next();
  while (!r.done) r = f.next(await execAsync(r.value));
  return r.value;
}

function* ipJson(args: string[]): Flow<unknown[]> {
  const out = yield { cmd: 'ip', args: ['-j', ...args] };
  try {
    return out?.trim() ? (JSON.parse(out) as unknown[]) : [];
  } catch {
    return [];
  }
}

function* routeFlow(addr: string): Flow<RouteInfo | undefined> {
  const r = (yield* ipJson([familyOf(addr) === 6 ? '-6' : '-4', 'route', 'get', addr]))[0] as Record<string, string> | undefined;
  if (!r?.dev) return undefined;
  const out: RouteInfo = { dev: r.dev };
  if (r.gateway) out.gateway = r.gateway;
  if (r.prefsrc) out.prefsrc = r.prefsrc;
  return out;
}

const USABLE = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']);

function* neighbourFlow(addr: string, dev: string): Flow<string | undefined> {
  const entries = (yield* ipJson(['neigh', 'show', 'to', addr, 'dev', dev])) as { lladdr?: string; state?: string[] }[];
  const e = entries.find((x) => x.lladdr && (x.state ?? []).some((s) => USABLE.has(s)));
  return e?.lladdr?.toLowerCase();
}

function* linkFlow(dev: string): Flow<{ ifindex?: number; mac?: string; peer?: string }> {
  const l = (yield* ipJson(['link', 'show', 'dev', dev]))[0] as { address?: string; ifindex?: number; link?: string } | undefined;
  return { ifindex: l?.ifindex, mac: l?.address?.toLowerCase(), ...(l?.link ? { peer: l.link } : {}) };
}

export function routeTo(addr: string): RouteInfo | undefined {
  return runSync(routeFlow(addr));
}

/**
 * The destination MACs the attached interfaces accept now (src/dataplane/l2addrs.ts): one
 * rtnetlink link dump (no probing). Throws when the links cannot be read: an empty answer would
 * stop every forward.
 */
export function acceptedMacs(attached: readonly string[]): AcceptedMac[] {
  return acceptedSet(readLinks(), attached);
}

/** The links of this namespace as `ip -j -d link show` describes them, from one rtnetlink dump
 *  (src/director/rtnl.ts: ~0.1 ms where spawning ip took ~4 ms of every CLI change). */
export function readLinks(): LinkDesc[] {
  try {
    return dumpLinks();
  } catch (e) {
    throw new Error(`cannot read the interfaces (rtnetlink link dump): ${(e as Error).message}`);
  }
}

export function neighbourMac(addr: string, dev: string): string | undefined {
  return runSync(neighbourFlow(addr, dev));
}

/** neighbourMac without blocking the event loop (health checks, metrics, the status page). */
export function neighbourMacAsync(addr: string, dev: string): Promise<string | undefined> {
  return runAsync(neighbourFlow(addr, dev));
}

/** The interface's index and MAC address, and (veth) its peer when that is in this namespace. */
export function linkInfo(dev: string): { ifindex?: number; mac?: string; peer?: string } {
  return runSync(linkFlow(dev));
}

export interface Resolution {
  l2?: L2Next;
  problem?: string;
  dev?: string;
  /** The problem is a next hop that does not answer (a realserver that is down), not the configuration. */
  unresolved?: boolean;
}

/**
 * Resolves one realserver: DR needs the RIP on a directly connected network; Tun sends to the
 * RIP's next hop. `attached` are the director's interfaces: when the egress is not the only
 * one of them, the realserver gets an egress ifindex (XDP_REDIRECT) and that interface's MAC.
 */
function* resolveFlow(rs: Realserver, attached: readonly string[]): Flow<Resolution> {
  const route = yield* routeFlow(rs.nextHop ?? rs.address);
  if (!route) return { problem: `no route to ${rs.nextHop ?? rs.address}` };
  let hop = rs.nextHop ?? rs.address;
  if (route.gateway) {
    if (rs.method === 'dr') {
      return { problem: `LVS-DR needs the realserver on a directly connected network, but ${rs.address} is routed via ${route.gateway} (${route.dev}); use Tun (-i)` };
    }
    if (!rs.nextHop) hop = route.gateway;
  }
  const dev = rs.ifname ?? route.dev;
  let mac = yield* neighbourFlow(hop, dev);
  if (!mac) {
    // One ping so the kernel resolves the neighbour; its failure is expected, the table tells.
    yield { cmd: 'ping', args: [familyOf(hop) === 6 ? '-6' : '-4', '-c', '1', '-W', '1', '-I', dev, hop], timeoutMs: 3000 };
    mac = yield* neighbourFlow(hop, dev);
  }
  if (!mac) return { dev, problem: `${hop} does not answer ARP/ND on ${dev}`, unresolved: true };
  const l2: L2Next = { mac };
  if (!(attached.length === 1 && attached[0] === dev)) {
    const { ifindex, mac: smac } = yield* linkFlow(dev);
    if (ifindex !== undefined) l2.ifindex = ifindex;
    if (smac) l2.smac = smac;
  }
  return { l2, dev };
}

export function resolveRealserver(svc: VirtualService, rs: Realserver, attached: readonly string[]): Resolution {
  void svc;
  return runSync(resolveFlow(rs, attached));
}

/** What is already known of a realserver: its next hop, or that it was found unresolved just now. */
export type Known = L2Next | { unresolved: string } | undefined;

/** Next hops of a configuration: resolved ones, and realservers that do not answer (id -> why). */
export interface Resolutions { l2: Map<string, L2Next>; unresolved: Map<string, string> }

interface Todo { s: VirtualService; r: Realserver; id: string; key: string }

/** Splits the realservers into known and to-resolve (one resolution per distinct next hop).
 *  `skip`: services whose next hops the caller has already (none of theirs is in the result). */
function plan(services: readonly VirtualService[], known: (svc: VirtualService, rs: Realserver) => Known, skip?: ReadonlySet<VirtualService>): { out: Resolutions; todo: Todo[] } {
  const out: Resolutions = { l2: new Map(), unresolved: new Map() };
  const todo: Todo[] = [];
  for (const s of services) {
    if (skip?.has(s)) continue;
    for (const r of s.realservers) {
      const id = realId(s, r);
      if (r.mac) {
        out.l2.set(id, { mac: r.mac });
        continue;
      }
      const k = known(s, r);
      if (k && 'unresolved' in k) out.unresolved.set(id, k.unresolved);
      else if (k) out.l2.set(id, k);
      else todo.push({ s, r, id, key: `${r.method}|${r.address}|${r.nextHop ?? ''}|${r.ifname ?? ''}` });
    }
  }
  return { out, todo };
}

/** Files each result; one ConfigError lists every realserver whose configuration is wrong. */
function finish(out: Resolutions, todo: readonly Todo[], results: ReadonlyMap<string, Resolution>): Resolutions {
  const problems: string[] = [];
  for (const t of todo) {
    const res = results.get(t.key)!;
    if (res.l2) out.l2.set(t.id, res.l2);
    else if (res.unresolved) out.unresolved.set(t.id, res.problem!);
    else problems.push(`${serviceId(t.s)}: realserver ${t.r.address} (${t.r.method === 'dr' ? 'DR' : 'Tun'}): ${res.problem}`);
  }
  if (problems.length) {
    throw new ConfigError(`cannot resolve the next hop of ${problems.length} realserver${problems.length > 1 ? 's' : ''}:\n  ${problems.join('\n  ')}`, {
      field: 'mac', hint: 'LVS-DR needs each realserver on a network the director is directly connected to; Tun needs a route to it',
    });
  }
  return out;
}

/** Resolves every realserver that `known` does not answer for (synchronously). */
export function resolveAll(
  services: readonly VirtualService[], attached: readonly string[], known: (svc: VirtualService, rs: Realserver) => Known, skip?: ReadonlySet<VirtualService>,
): Resolutions {
  const { out, todo } = plan(services, known, skip);
  const results = new Map<string, Resolution>();
  for (const t of todo) if (!results.has(t.key)) results.set(t.key, runSync(resolveFlow(t.r, attached)));
  return finish(out, todo, results);
}

/** resolveAll without blocking: every distinct next hop at once (one ping's wait for all the dead ones). */
export async function resolveAllAsync(
  services: readonly VirtualService[], attached: readonly string[], known: (svc: VirtualService, rs: Realserver) => Known, skip?: ReadonlySet<VirtualService>,
): Promise<Resolutions> {
  const { out, todo } = plan(services, known, skip);
  const distinct = new Map<string, Todo>();
  for (const t of todo) if (!distinct.has(t.key)) distinct.set(t.key, t);
  const results = new Map(await Promise.all([...distinct].map(async ([k, t]) => [k, await runAsync(resolveFlow(t.r, attached))] as const)));
  return finish(out, todo, results);
}

/**
 * Outer source addresses for Tun: the configured ones, else the kernel's preferred source toward
 * the first Tun realserver of each outer family (what `ip route get RIP` says). A Tun packet from
 * 0.0.0.0 or :: would be dropped by the first router on its way.
 */
function* tunnelFlow(cfg: DirectorConfig): Flow<{ source4?: string; source6?: string }> {
  const out: { source4?: string; source6?: string } = {};
  if (cfg.settings?.tunnel?.source4) out.source4 = cfg.settings.tunnel.source4;
  if (cfg.settings?.tunnel?.source6) out.source6 = cfg.settings.tunnel.source6;
  // The first Tun realserver of each outer family, found with a plain loop (this runs for every
  // change: a thousand services' realservers are looked at here, not stepped through as a flow).
  const first: { s: VirtualService; r: Realserver; key: 'source4' | 'source6' }[] = [];
  for (const s of cfg.services) {
    for (const r of s.realservers) {
      if (r.method !== 'tun') continue;
      const key = familyOf(r.address) === 6 ? 'source6' : 'source4';
      if (!out[key] && !first.some((x) => x.key === key)) first.push({ s, r, key });
    }
  }
  for (const { s, r, key } of first) {
    const src = (yield* routeFlow(r.address))?.prefsrc;
    if (!src) {
      throw new ConfigError(`${serviceId(s)}: realserver ${r.address} (Tun) needs an outer source address and no route to it gives one`, {
        field: `settings.tunnel.${key}`, hint: `set settings.tunnel.${key === 'source4' ? 'source4' : 'source6'} in the configuration file (lvs-xdp apply -f)`,
      });
    }
    out[key] = src;
  }
  return out;
}

export function tunnelSources(cfg: DirectorConfig): { source4?: string; source6?: string } {
  return runSync(tunnelFlow(cfg));
}

export function tunnelSourcesAsync(cfg: DirectorConfig): Promise<{ source4?: string; source6?: string }> {
  return runAsync(tunnelFlow(cfg));
}
