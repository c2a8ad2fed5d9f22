/**
 * The status document of `run` (GET /api/status, the status page's data): per service and
 * realserver the configured and effective weights, health with its last check, counters and
 * rates. Pure: built from a stats view, the health model and the effective configuration.
 */
import type { SyncDaemonStatus } from '../sync/state.js';
import type { BgpSession } from './bird.js';
import { serviceId, servicesById } from '../model/types.js';
import type { StatsView } from '../view/stats.js';
import type { InterfaceStatus } from '../director/director.js';
import type { CheckSpec } from './spec.js';
import type { HealthModel, Effective } from './health.js';
import type { Announcement } from './announce.js';
import { historyKey, HISTORY_MAX_REALSERVERS, type RateHistory, type RateSeries } from './history.js';

export interface StatusRealserver {
  address: string; port: number; method: string; weight: number; effectiveWeight: number | null;
  health: 'up' | 'down' | 'unchecked'; since?: string; check?: string; last?: string; checks: number; failures: number;
  sorry?: boolean;
  /** Installed without a next hop (does not answer ARP/ND): since, and why. */
  unresolved?: { since: string; problem: string };
  /** Drained by hand until undrained: since. */
  drained?: { since: string };
  packets: string; bytes: string; conns: string; active: number; inactive: number;
  rates: { pps: number; bps: number; cps: number };
  /** packets/s and new connections/s over the last minutes, oldest first (see StatusDoc.history). */
  history?: RateSeries;
}
export interface StatusService {
  id: string; scheduler: string; policy: string; allDown: boolean; sorryActive: boolean;
  packets: string; bytes: string; conns: string; rates: { pps: number; bps: number; cps: number };
  realservers: StatusRealserver[];
}
/** The line an operator reads first. */
export interface StatusSummary {
  /** up: every realserver up; degraded: some down or unresolved; down: the all-down policy is in force. */
  services: { up: number; degraded: number; down: number };
  realserversDown: number;
  /** Sum of the rates of every drop reason (counters of kind drop). */
  dropsPerSecond: number;
  lastReload?: { at: string; ok: boolean; error?: string };
}
export interface StatusDoc {
  time: string; pid: number; file: string; startedAt: string;
  summary: StatusSummary;
  /** The sparklines' sampling: one sample every intervalMs, at most capacity per realserver. */
  history?: { intervalMs: number; capacity: number };
  interfaces: { name: string; mode: string; linked: boolean }[];
  connections: { entries: number; max: number };
  reloads: { ok: number; failed: number; last?: { at: string; ok: boolean; error?: string } };
  services: StatusService[];
  counters: Record<string, { value: string; rate: number; kind: string }>;
  /** Per VIP, with settings.announce: announced (its route is in the table) or withdrawn, and why. */
  announcements?: Announcement[];
  /** With settings.announce: the director's drain (lvs-xdp drain --director), null when not drained. */
  directorDrain?: { since: string } | null;
  /** With settings.announce.bird-socket: BIRD's BGP sessions (bgpError while BIRD does not answer). */
  bgp?: BgpSession[];
  bgpError?: string;
  /** Connection sync daemons running in run (src/sync/daemons.ts), with what they sent / received. */
  sync?: SyncDaemonStatus[];
}

export function describeCheck(s: CheckSpec): string {
  const what = s.type === 'http' || s.type === 'https' ? `${s.type} GET ${s.path}` : s.type === 'exec' ? `exec ${s.command?.[0] ?? ''}` : s.type;
  const port = s.type === 'exec' ? '' : ` port ${s.port}`;
  return `${what}${port}${s.via === 'forwarding' ? ' via the VIP (forwarding path)' : s.viaFallback ? ` to the realserver's address (${s.viaFallback})` : ''}, every ${s.intervalMs / 1000}s, rise ${s.rise}, fall ${s.fall}`;
}

export interface StatusInput {
  view: StatsView;
  model: HealthModel;
  effective: Effective;
  file: string;
  startedAt: string;
  reloads: StatusDoc['reloads'];
  interfaces: InterfaceStatus[];
  /** "serviceId/rip" -> realservers installed unresolved. */
  unresolved?: ReadonlyMap<string, { since: string; problem: string }>;
  /** "serviceId/rip" -> since when drained by hand (a service's drain: each of its realservers). */
  drained?: ReadonlyMap<string, string>;
  history?: RateHistory;
}

/** Pure: the summary line's numbers from the services and the counters' rates. */
export function summarize(services: StatusService[], counters: StatsView['counters'], reloads: StatusDoc['reloads']): StatusSummary {
  const out: StatusSummary = { services: { up: 0, degraded: 0, down: 0 }, realserversDown: 0, dropsPerSecond: 0 };
  for (const s of services) {
    const real = s.realservers.filter((r) => !r.sorry);
    const down = real.filter((r) => r.health === 'down').length;
    out.realserversDown += down;
    if (s.allDown) out.services.down++;
    else if (down > 0 || real.some((r) => r.unresolved)) out.services.degraded++;
    else out.services.up++;
  }
  for (const c of Object.values(counters)) if (c.kind === 'drop') out.dropsPerSecond += c.rate;
  if (reloads.last) out.lastReload = reloads.last;
  return out;
}

export function buildStatusDoc(i: StatusInput): StatusDoc {
  const { view, model } = i;
  const eff = i.effective;
  const targets = new Map(model.targetList.map((t) => [t.key, t]));
  const effective = servicesById(eff.config.services);
  const viewed = new Map(view.services.map((s) => [s.id, s]));
  const history = model.config.services.reduce((n, s) => n + s.realservers.length, 0) <= HISTORY_MAX_REALSERVERS ? i.history : undefined;
  const services: StatusService[] = model.config.services.map((svc) => {
    const id = serviceId(svc);
    const v = viewed.get(id);
    const sh = eff.services.get(id);
    const es = effective.get(id);
    const rates0 = { pps: 0, bps: 0, cps: 0 };
    const row = (address: string, port: number, method: string, weight: number, sorry: boolean): StatusRealserver => {
      const st = v?.realservers.find((r) => r.address === address);
      const h = model.stateOf(svc, { address });
      const t = targets.get(`${id}/${address}`);
      const e = es?.realservers.find((r) => r.address === address);
      const out: StatusRealserver = {
        address, port, method, weight, effectiveWeight: e ? e.weight : null,
        health: sorry ? 'up' : h ? h.state : 'unchecked', checks: h?.checks ?? 0, failures: h?.failures ?? 0,
        packets: String(st?.packets ?? 0n), bytes: String(st?.bytes ?? 0n), conns: String(st?.conns ?? 0n),
        active: st?.active ?? 0, inactive: st?.inactive ?? 0, rates: st?.rates ?? rates0,
      };
      if (sorry) out.sorry = true;
      const u = i.unresolved?.get(`${id}/${address}`);
      if (u) out.unresolved = { since: u.since, problem: u.problem };
      const dr = i.drained?.get(`${id}/${address}`);
      if (dr) {
        out.drained = { since: dr };
        if (out.effectiveWeight !== null) out.effectiveWeight = 0;
      }
      if (h) out.since = new Date(h.since).toISOString();
      if (t) out.check = describeCheck(t.spec);
      if (h?.last) out.last = `${h.last.ok ? 'ok' : 'FAILED'}: ${h.last.detail}`;
      const hist = history?.series(historyKey(id, address));
      if (hist) out.history = hist;
      return out;
    };
    const realservers = svc.realservers.map((r) => row(r.address, r.port, r.method, r.weight, false));
    for (const r of es?.realservers ?? []) {
      if (!svc.realservers.some((x) => x.address === r.address)) realservers.push(row(r.address, r.port, r.method, r.weight, true));
    }
    return {
      id, scheduler: svc.scheduler, policy: sh?.policy ?? 'keep-last', allDown: sh?.allDown ?? false, sorryActive: sh?.sorryActive ?? false,
      packets: String(v?.packets ?? 0n), bytes: String(v?.bytes ?? 0n), conns: String(v?.conns ?? 0n), rates: v?.rates ?? rates0, realservers,
    };
  });
  const counters: StatusDoc['counters'] = {};
  for (const [k, c] of Object.entries(view.counters)) if (c.value > 0n) counters[k] = { value: String(c.value), rate: c.rate, kind: c.kind };
  return {
    time: new Date().toISOString(), pid: process.pid, file: i.file, startedAt: i.startedAt,
    summary: summarize(services, view.counters, i.reloads),
    ...(i.history ? { history: { intervalMs: i.history.intervalMs, capacity: i.history.capacity } } : {}),
    interfaces: i.interfaces.map((x) => ({ name: x.name, mode: x.mode, linked: x.linked })),
    connections: view.connections, reloads: i.reloads, services, counters,
  };
}
