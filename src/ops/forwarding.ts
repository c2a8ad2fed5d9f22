/**
 * The forwarding-path check (via: forwarding, LVS-DR): the probe goes to the VIP:port, not to
 * the realserver's address, in a frame addressed to that realserver's MAC, which is exactly
 * what the data plane sends for a client's flow scheduled there. The realserver accepts it only
 * if it holds the VIP (on lo, ARP-silent), so a realserver whose VIP is missing fails the check
 * although its own address answers.
 *
 * How: per checked realserver a few local ports (a block above the kernel's ephemeral range)
 * and a policy routing rule
 *     ip rule add pref P from SRC ipproto tcp|udp sport LO-HI table T
 *     ip route replace VIP/32 via RIP dev DEV onlink table T
 * so a probe bound to SRC:port in that block is routed to the VIP through RIP's neighbour entry
 * (the realserver's MAC). The answer comes back from the VIP to SRC (LVS-DR: the realserver
 * answers directly) and the XDP program passes it to the kernel (not a VIP). Rules and tables
 * are in a range of their own (default table/pref 19500..19999) and are removed on exit; a
 * killed `run` leaves them, and the next `run` removes them first.
 *
 * When the director holds the VIP as a local address (the usual one-armed LVS-DR, where it
 * answers ARP for the VIP) the local table wins over the rule, and the answer from the VIP would
 * be a martian: the probe then sends the frame itself and reads the answer off the interface
 * (pathprobe.ts, mode dr).
 *
 * LVS-Tun realservers get a port block and a source address too, but no rule or route: their
 * probe (pathprobe.ts, mode tun) sends the IP-in-IP packet itself through a raw socket (outer
 * destination the realserver, inner SRC:port -> VIP:port) and reads the direct answer from the
 * VIP off the interface toward the realserver.
 */
import { execFile, execFileSync } from 'node:child_process';
import { familyOf } from '../model/address.js';
import type { Target } from './spec.js';

export interface ForwardingOptions {
  /** First routing table id and rule preference used (default 19500); `slots` of them. */
  base?: number;
  slots?: number;
  /** First local port (default 61000, above Linux's default ephemeral range 32768-60999). */
  portBase?: number;
  portsPerTarget?: number;
}

export interface Route {
  key: string;
  source: string;
  ports: [number, number];
  table: number;
  family: 4 | 6;
  /** LVS-Tun: no policy routing; the probe sends the encapsulated packet itself (pathprobe.ts). */
  tun?: boolean;
  problem?: string;
}

type Exec = (args: string[]) => string;

/** Lookups on the probe path (is the VIP local?): never a synchronous spawn there. */
type AsyncExec = (args: string[]) => Promise<string>;

const defaultExec: Exec = (args) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const defaultAsyncExec: AsyncExec = (args) => new Promise((resolve, reject) => {
  execFile('ip', args, { encoding: 'utf8' }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
});

export class ForwardingRoutes {
  private readonly base: number;
  private readonly slots: number;
  private readonly portBase: number;
  private readonly per: number;
  private routes = new Map<string, Route & { slot: number; proto: string; vip: string; rip: string; dev?: string }>();
  private next = new Map<string, number>();
  private localCache = new Map<string, { at: number; local: boolean }>();

  private readonly lookup: AsyncExec;

  /** `ip`: route and rule changes (start and reload); `lookup`: reads on the probe path (default: `ip` run asynchronously). */
  constructor(opts: ForwardingOptions = {}, private readonly ip: Exec = defaultExec, lookup?: AsyncExec) {
    this.lookup = lookup ?? (ip === defaultExec ? defaultAsyncExec : async (args) => ip(args));
    this.base = opts.base ?? 19500;
    this.slots = opts.slots ?? 500;
    this.portBase = opts.portBase ?? 61000;
    this.per = opts.portsPerTarget ?? 8;
    if (this.portBase + this.slots * this.per > 65536) this.slots = Math.floor((65536 - this.portBase) / this.per);
  }

  private inRange(table: unknown): boolean {
    return typeof table === 'number' ? table >= this.base && table < this.base + this.slots
      : typeof table === 'string' && /^\d+$/.test(table) && this.inRange(Number(table));
  }

  /** Removes every rule and route in our range (also those a killed run left). */
  clear(): void {
    for (const fam of ['-4', '-6']) {
      let rules: { priority?: number; table?: string | number }[] = [];
      try {
        rules = JSON.parse(this.ip(['-j', fam, 'rule', 'show']) || '[]') as typeof rules;
      } catch {
        rules = [];
      }
      const tables = new Set<string>();
      for (const r of rules) {
        if (r.priority !== undefined && this.inRange(r.priority) && this.inRange(r.table)) {
          tables.add(String(r.table));
          try {
            this.ip([fam, 'rule', 'del', 'pref', String(r.priority)]);
          } catch {
            // gone meanwhile
          }
        }
      }
      for (const t of [...tables, ...[...this.routes.values()].map((r) => String(r.table))]) {
        try {
          this.ip([fam, 'route', 'flush', 'table', t]);
        } catch {
          // empty table
        }
      }
    }
    this.routes.clear();
  }

  /** Installs the routes of the forwarding-path targets, removes those no longer wanted. */
  sync(targets: readonly Target[]): void {
    const want = targets.filter((t) => t.spec.via === 'forwarding');
    const keys = new Set(want.map((t) => t.key));
    for (const [k, r] of this.routes) {
      if (!keys.has(k)) {
        this.remove(r);
        this.routes.delete(k);
      }
    }
    const used = new Set([...this.routes.values()].map((r) => r.slot));
    for (const t of want) {
      const proto = t.spec.type === 'udp' ? 'udp' : 'tcp';
      const old = this.routes.get(t.key);
      if (old && old.proto === proto && old.vip === t.vip && old.rip === t.address && !!old.tun === (t.method === 'tun') && !old.problem) continue;
      if (old) {
        this.remove(old);
        this.routes.delete(t.key);
        used.delete(old.slot);
      }
      let slot = 0;
      while (used.has(slot)) slot++;
      if (slot >= this.slots) {
        this.routes.set(t.key, this.entry(t, slot, proto, 'no free forwarding-path slot (too many checks via: forwarding)'));
        continue;
      }
      used.add(slot);
      this.routes.set(t.key, this.install(t, slot, proto));
    }
  }

  private entry(t: Target, slot: number, proto: string, problem?: string): Route & { slot: number; proto: string; vip: string; rip: string } {
    const lo = this.portBase + slot * this.per;
    const r = { key: t.key, source: '', ports: [lo, lo + this.per - 1] as [number, number], table: this.base + slot, family: familyOf(t.vip), slot, proto, vip: t.vip, rip: t.address, ...(t.method === 'tun' ? { tun: true } : {}) };
    return problem ? { ...r, problem } : r;
  }

  private install(t: Target, slot: number, proto: string): Route & { slot: number; proto: string; vip: string; rip: string; dev?: string } {
    const e = this.entry(t, slot, proto);
    const fam = e.family === 6 ? '-6' : '-4';
    if (e.tun) {
      // The inner source: this host's address toward the realserver (same family) or the VIP.
      const via = familyOf(t.address) === e.family ? t.address : t.vip;
      const r = this.routeTo(via);
      if (!r) return { ...e, problem: `no route to ${via}` };
      if (!r.prefsrc) return { ...e, problem: `no source address toward ${via}` };
      // The answer is read where the realserver's packets arrive: the link toward it.
      const toRs = via === t.address ? r : this.routeTo(t.address);
      if (!toRs) return { ...e, problem: `no route to ${t.address}` };
      return { ...e, source: r.prefsrc, dev: toRs.dev };
    }
    const route = this.routeTo(t.address);
    if (!route) return { ...e, problem: `no route to ${t.address}` };
    if (route.gateway) return { ...e, problem: `${t.address} is not on a link of the director (via ${route.gateway}): LVS-DR needs it on-link` };
    if (!route.prefsrc) return { ...e, problem: `no source address toward ${t.address}` };
    const full = e.family === 6 ? 128 : 32;
    try {
      this.ip([fam, 'route', 'replace', `${t.vip}/${full}`, 'via', t.address, 'dev', route.dev, 'onlink', 'table', String(e.table)]);
      try {
        this.ip([fam, 'rule', 'del', 'pref', String(e.table)]);
      } catch {
        // none left over
      }
      this.ip([fam, 'rule', 'add', 'pref', String(e.table), 'from', route.prefsrc, 'ipproto', proto, 'sport', `${e.ports[0]}-${e.ports[1]}`, 'table', String(e.table)]);
    } catch (err) {
      return { ...e, source: route.prefsrc, dev: route.dev, problem: `ip: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}` };
    }
    return { ...e, source: route.prefsrc, dev: route.dev };
  }

  private remove(r: Route): void {
    if (r.tun) return;
    const fam = r.family === 6 ? '-6' : '-4';
    try {
      this.ip([fam, 'rule', 'del', 'pref', String(r.table)]);
    } catch {
      // already gone
    }
    try {
      this.ip([fam, 'route', 'flush', 'table', String(r.table)]);
    } catch {
      // already gone
    }
  }

  /**
   * The next source address and port for a target's probe (ports rotate within its block).
   * `raw`: the probe must build its packets itself (path-probe.py, reading the answer on `dev`):
   * always for Tun, and for DR when the VIP is a local address of the director (the local
   * routing table would keep a kernel socket's probe at home, and the answer is a martian).
   */
  async endpoint(t: Target): Promise<{ localAddress: string; localPort: number; dev: string; raw: boolean } | { problem: string }> {
    const r = this.routes.get(t.key);
    if (!r) return { problem: 'forwarding path not set up' };
    if (r.problem) return { problem: r.problem };
    if (!r.dev) return { problem: `no interface toward ${t.address}` };
    const n = this.next.get(t.key) ?? 0;
    this.next.set(t.key, (n + 1) % this.per);
    return { localAddress: r.source, localPort: r.ports[0] + n, dev: r.dev, raw: !!r.tun || await this.isLocal(t.vip) };
  }

  private routeTo(addr: string): { dev: string; gateway?: string; prefsrc?: string } | undefined {
    try {
      const r = (JSON.parse(this.ip(['-j', familyOf(addr) === 6 ? '-6' : '-4', 'route', 'get', addr]) || '[]') as { dev?: string; gateway?: string; prefsrc?: string }[])[0];
      return r?.dev ? { dev: r.dev, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.prefsrc ? { prefsrc: r.prefsrc } : {}) } : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether `vip` is local on the director now (read again, bypassing the cache). */
  vipIsLocalNow(vip: string): Promise<boolean> {
    this.localCache.delete(vip);
    return this.isLocal(vip);
  }

  /** Whether `addr` is local on the director (read at most every 5 s per address). */
  private async isLocal(addr: string): Promise<boolean> {
    const now = Date.now();
    const c = this.localCache.get(addr);
    if (c && now - c.at < 5000) return c.local;
    const local = await isLocal(this.lookup, addr);
    this.localCache.set(addr, { at: now, local });
    return local;
  }

  get list(): Route[] {
    return [...this.routes.values()].map(({ key, source, ports, table, family, tun, problem }) => ({ key, source, ports, table, family, ...(tun ? { tun } : {}), ...(problem ? { problem } : {}) }));
  }
}

async function isLocal(ip: AsyncExec, addr: string): Promise<boolean> {
  try {
    const r = JSON.parse(await ip(['-j', familyOf(addr) === 6 ? '-6' : '-4', 'route', 'show', 'table', 'local', addr]) || '[]') as unknown[];
    return r.length > 0;
  } catch {
    return false;
  }
}
