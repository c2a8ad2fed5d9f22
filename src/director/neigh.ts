/**
 * Realserver (DR) and next-hop (Tun) MAC resolution from the kernel's routing and neighbour
 * tables, through iproute2's JSON output (execFile, never a shell). A missing or failed
 * neighbour entry is probed once (ping) and read again; what still cannot be resolved is
 * reported for every realserver at once, naming each.
 */
import { execFileSync } from 'node:child_process';
import { ConfigError } from '../errors.js';
import { familyOf } from '../model/address.js';
import { serviceId, type VirtualService, type Realserver, type DirectorConfig } from '../model/types.js';
import { realId, type L2Next } from '../dataplane/compile.js';
import { acceptedSet, type AcceptedMac, type LinkDesc } from '../dataplane/l2addrs.js';

export interface RouteInfo { dev: string; gateway?: string; prefsrc?: string }

function ipJson(args: string[]): unknown[] {
  try {
    const out = execFileSync('ip', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out.trim() ? (JSON.parse(out) as unknown[]) : [];
  } catch {
    return [];
  }
}

export function routeTo(addr: string): RouteInfo | undefined {
  const r = ipJson([familyOf(addr) === 6 ? '-6' : '-4', 'route', 'get', addr])[0] as Record<string, string> | undefined;
  if (!r?.dev) return undefined;
  const out: RouteInfo = { dev: r.dev };
  if (r.gateway) out.gateway = r.gateway;
  if (r.prefsrc) out.prefsrc = r.prefsrc;
  return out;
}

const USABLE = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']);

export function neighbourMac(addr: string, dev: string): string | undefined {
  const entries = ipJson(['neigh', 'show', 'to', addr, 'dev', dev]) as { lladdr?: string; state?: string[] }[];
  const e = entries.find((x) => x.lladdr && (x.state ?? []).some((s) => USABLE.has(s)));
  return e?.lladdr?.toLowerCase();
}

/** The interface's index and MAC address, and (veth) its peer when that is in this namespace. */
export function linkInfo(dev: string): { ifindex?: number; mac?: string; peer?: string } {
  const l = ipJson(['link', 'show', 'dev', dev])[0] as { address?: string; ifindex?: number; link?: string } | undefined;
  return { ifindex: l?.ifindex, mac: l?.address?.toLowerCase(), ...(l?.link ? { peer: l.link } : {}) };
}

/**
 * The destination MACs the attached interfaces accept now (src/dataplane/l2addrs.ts): one
 * `ip -j -d link show` (no probing). Throws when the links cannot be read: an empty answer would
 * stop every forward.
 */
export function acceptedMacs(attached: readonly string[]): AcceptedMac[] {
  return acceptedSet(readLinks(), attached);
}

/** The links of this namespace as `ip -j -d link show` describes them (one process, no probing). */
export function readLinks(): LinkDesc[] {
  try {
    return JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as LinkDesc[];
  } catch (e) {
    throw new Error(`cannot read the interfaces (ip -j -d link show): ${(e as Error).message}`);
  }
}

/** One ping so the kernel resolves the neighbour; failures are expected and ignored. */
function probe(addr: string, dev: string): void {
  try {
    execFileSync('ping', [familyOf(addr) === 6 ? '-6' : '-4', '-c', '1', '-W', '1', '-I', dev, addr], { stdio: 'ignore', timeout: 3000 });
  } catch {
    // the neighbour table tells
  }
}

export interface Resolution { l2?: L2Next; problem?: string; dev?: string }

/**
 * Resolves one realserver: DR needs the RIP on a directly connected network; Tun sends to the
 * RIP's next hop. `attached` are the director's interfaces: when the egress is not the only
 * one of them, the realserver gets an egress ifindex (XDP_REDIRECT) and that interface's MAC.
 */
export function resolveRealserver(svc: VirtualService, rs: Realserver, attached: readonly string[]): Resolution {
  const route = routeTo(rs.nextHop ?? rs.address);
  if (!route) return { problem: `no route to ${rs.nextHop ?? rs.address}` };
  let hop = rs.nextHop ?? rs.address;
  if (route.gateway) {
    if (rs.method === 'dr') {
      return { problem: `LVS-DR needs the realserver on a directly connected network, but ${rs.address} is routed via ${route.gateway} (${route.dev}); use Tun (-i)` };
    }
    if (!rs.nextHop) hop = route.gateway;
  }
  const dev = rs.ifname ?? route.dev;
  let mac = neighbourMac(hop, dev);
  if (!mac) {
    probe(hop, dev);
    mac = neighbourMac(hop, dev);
  }
  if (!mac) return { dev, problem: `${hop} does not answer ARP/ND on ${dev}` };
  const l2: L2Next = { mac };
  if (!(attached.length === 1 && attached[0] === dev)) {
    const { ifindex, mac: smac } = linkInfo(dev);
    if (ifindex !== undefined) l2.ifindex = ifindex;
    if (smac) l2.smac = smac;
  }
  void svc;
  return { l2, dev };
}

/** Resolves every realserver without a MAC; one ConfigError lists all that fail. */
export function resolveAll(
  services: readonly VirtualService[], attached: readonly string[], known: (svc: VirtualService, rs: Realserver) => L2Next | undefined,
): Map<string, L2Next> {
  const out = new Map<string, L2Next>();
  const problems: string[] = [];
  const cache = new Map<string, Resolution>();
  for (const s of services) {
    for (const r of s.realservers) {
      const id = realId(s, r);
      if (r.mac) {
        out.set(id, { mac: r.mac });
        continue;
      }
      const k = known(s, r);
      if (k) {
        out.set(id, k);
        continue;
      }
      const ck = `${r.method}|${r.address}|${r.nextHop ?? ''}|${r.ifname ?? ''}`;
      let res = cache.get(ck);
      if (!res) {
        res = resolveRealserver(s, r, attached);
        cache.set(ck, res);
      }
      if (res.l2) out.set(id, res.l2);
      else problems.push(`${serviceId(s)}: realserver ${r.address} (${r.method === 'dr' ? 'DR' : 'Tun'}): ${res.problem}`);
    }
  }
  if (problems.length) {
    throw new ConfigError(`cannot resolve the MAC address of ${problems.length} realserver${problems.length > 1 ? 's' : ''}:\n  ${problems.join('\n  ')}`, {
      field: 'mac', hint: 'check that the realserver is up and reachable from the director, or give its MAC (--mac / mac:)',
    });
  }
  return out;
}

/**
 * Outer source addresses for Tun: the configured ones, else the kernel's preferred source toward
 * the first Tun realserver of each outer family (what `ip route get RIP` says). A Tun packet from
 * 0.0.0.0 or :: would be dropped by the first router on its way.
 */
export function tunnelSources(cfg: DirectorConfig): { source4?: string; source6?: string } {
  const out: { source4?: string; source6?: string } = {};
  if (cfg.settings?.tunnel?.source4) out.source4 = cfg.settings.tunnel.source4;
  if (cfg.settings?.tunnel?.source6) out.source6 = cfg.settings.tunnel.source6;
  for (const s of cfg.services) {
    for (const r of s.realservers) {
      if (r.method !== 'tun') continue;
      const key = familyOf(r.address) === 6 ? 'source6' : 'source4';
      if (out[key]) continue;
      const src = routeTo(r.address)?.prefsrc;
      if (!src) {
        throw new ConfigError(`${serviceId(s)}: realserver ${r.address} (Tun) needs an outer source address and no route to it gives one`, {
          field: `settings.tunnel.${key}`, hint: `set settings.tunnel.${key === 'source4' ? 'source4' : 'source6'} in the configuration file (lvs-xdp apply -f)`,
        });
      }
      out[key] = src;
    }
  }
  return out;
}
