/**
 * Prometheus metrics (prom-client) filled from one reading of the data plane per scrape
 * (Director.readStats: per-CPU sums) plus the health state. Counter names come from
 * src/abi/generated.ts COUNTERS, never a copy.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { COUNTERS } from '../abi/generated.js';
import type { StatsSample, InterfaceStatus } from '../director/director.js';
import type { TableDigest } from '../director/digest.js';

export const METRIC_PREFIX = 'lvs_xdp_';

export interface HealthRow {
  service: string;
  address: string;
  /** 1 up, 0 down; undefined when not checked. */
  up?: number;
  configuredWeight: number;
  /** undefined: removed from the data plane (on-down: cut). */
  effectiveWeight?: number;
  checks: number;
  failures: number;
  /** Installed without a next hop (it does not answer ARP/ND): takes no new flows. */
  unresolved?: boolean;
  /** Drained by hand (`lvs-xdp drain`, `-e -w 0`) until undrained. */
  drained?: boolean;
  /** Since when in its health state (ISO), when checked. */
  since?: string;
}

export interface ServiceRow { service: string; allDown: boolean; sorryActive: boolean }

export interface MetricsInput {
  sample: StatsSample;
  interfaces: InterfaceStatus[];
  health: HealthRow[];
  services: ServiceRow[];
  reloads: { ok: number; failed: number };
  applies: { ok: number; failed: number };
  /** Per VIP with settings.announce (src/ops/announce.ts). */
  announcements?: { vip: string; announced: boolean; reason: string }[];
  /** The live tables' digest (Director.tableDigest); no series without it. */
  tables?: TableDigest;
  /** With settings.announce: whether the director is drained (lvs-xdp drain --director). */
  directorDrained?: boolean;
  /** With settings.announce.bird-socket: BIRD's BGP sessions. */
  bgpSessions?: { name: string; established: boolean }[];
}

function num(v: bigint | number): number {
  return typeof v === 'bigint' ? Number(v) : v;
}

export class DirectorMetrics {
  readonly registry = new Registry();
  private readonly svcPackets: Counter;
  private readonly svcBytes: Counter;
  private readonly svcConns: Counter;
  private readonly rsPackets: Counter;
  private readonly rsBytes: Counter;
  private readonly rsConns: Counter;
  private readonly rsActive: Gauge;
  private readonly rsInactive: Gauge;
  private readonly rsWeight: Gauge;
  private readonly rsConfWeight: Gauge;
  private readonly rsUp: Gauge;
  private readonly rsChecks: Counter;
  private readonly rsCheckFailures: Counter;
  private readonly rsUnresolved: Gauge;
  private readonly rsDrained: Gauge;
  private readonly svcAllDown: Gauge;
  private readonly svcSorry: Gauge;
  private readonly counter: Counter;
  private readonly connEntries: Gauge;
  private readonly connMax: Gauge;
  private readonly connFill: Gauge;
  private readonly connEvicted: Gauge;
  private readonly ifaceMode: Gauge;
  private readonly reloads: Counter;
  private readonly applies: Counter;
  private readonly vipAnnounced: Gauge;
  private readonly directorDrained: Gauge;
  private readonly bgpUp: Gauge;
  private readonly tableDigest: Gauge;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const r = [this.registry];
    const svc = ['service'];
    const rs = ['service', 'realserver'];
    const c = (name: string, help: string, labelNames: string[]) => new Counter({ name: METRIC_PREFIX + name, help, labelNames, registers: r });
    const g = (name: string, help: string, labelNames: string[]) => new Gauge({ name: METRIC_PREFIX + name, help, labelNames, registers: r });
    this.svcPackets = c('service_packets_total', 'Packets scheduled or forwarded for the virtual service (client to director)', svc);
    this.svcBytes = c('service_bytes_total', 'L3 bytes of those packets', svc);
    this.svcConns = c('service_connections_total', 'Connections scheduled for the virtual service', svc);
    this.rsPackets = c('realserver_packets_total', 'Packets forwarded to the realserver', rs);
    this.rsBytes = c('realserver_bytes_total', 'L3 bytes forwarded to the realserver', rs);
    this.rsConns = c('realserver_connections_total', 'Connections scheduled to the realserver', rs);
    this.rsActive = g('realserver_active_connections', 'Connection table entries to the realserver in TCP ESTABLISHED state (ipvsadm ActiveConn)', rs);
    this.rsInactive = g('realserver_inactive_connections', 'Other live connection table entries to the realserver, UDP included (ipvsadm InActConn)', rs);
    this.rsWeight = g('realserver_weight', 'Weight in the data plane now (0 while down or quiesced; absent when removed)', rs);
    this.rsConfWeight = g('realserver_configured_weight', 'Weight in the configuration file', rs);
    this.rsUp = g('realserver_up', 'Health check state: 1 up, 0 down (absent when the realserver is not checked)', rs);
    this.rsChecks = c('realserver_health_checks_total', 'Health checks run', rs);
    this.rsCheckFailures = c('realserver_health_check_failures_total', 'Health checks that failed', rs);
    this.rsUnresolved = g('realserver_unresolved', '1 while the realserver\'s next hop does not answer ARP/ND: installed without table slots, it takes no new flows', rs);
    this.rsDrained = g('realserver_drained', '1 while the realserver is drained by hand (lvs-xdp drain, -e -w 0) until undrained', rs);
    this.svcAllDown = g('service_all_down', '1 when every realserver with a weight is down (the all-down policy is in force)', svc);
    this.svcSorry = g('service_sorry_server_active', '1 while the sorry server takes the service\'s new flows', svc);
    this.counter = c('counter_total', `Data plane outcome and event counters (per-CPU sums): ${COUNTERS.map((x) => x.name.toLowerCase()).join(', ')}`, ['counter', 'kind']);
    this.connEntries = g('conntrack_entries', 'Entries in the connection table (lvs_conns)', []);
    this.connMax = g('conntrack_max_entries', 'Size of the connection table', []);
    this.connFill = g('conntrack_fill_ratio', 'Connection table entries / size', []);
    this.connEvicted = g('conntrack_evicted', 'Connection table entries evicted by the LRU since load (the table is too small when this grows)', []);
    this.ifaceMode = g('interface_info', 'XDP attachment per interface (mode: native, generic, ...; linked 1 when the program is on the interface)', ['interface', 'mode', 'linked']);
    this.reloads = c('config_reloads_total', 'Configuration reloads (SIGHUP) by result', ['result']);
    this.applies = c('config_applies_total', 'Applies of the effective configuration by result', ['result']);
    this.vipAnnounced = g('vip_announced', 'VIP announcement through the routing daemon: 1 announced, 0 withdrawn; reason: serving, sorry-server, no-healthy-realserver, drained, director-drained, detached, stopped', ['vip', 'reason']);
    this.directorDrained = g('director_drained', '1 while the director is drained (lvs-xdp drain --director): every VIP withdrawn, forwarding goes on', []);
    this.bgpUp = g('bgp_session_established', 'BGP session of the routing daemon (BIRD, settings.announce.bird-socket): 1 Established, 0 otherwise', ['session']);
    this.tableDigest = g('table_digest_info', 'Digest of the live lookup tables (slot -> realserver address and port, hash seed, hash fields, persistence): equal on directors that pick the same realserver for every flow; service "" is the overall digest', ['service', 'digest']);
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /** Sets every series from `m` (series of services and realservers that are gone disappear). */
  update(m: MetricsInput): void {
    for (const x of [this.svcPackets, this.svcBytes, this.svcConns, this.rsPackets, this.rsBytes, this.rsConns, this.rsChecks,
      this.rsCheckFailures, this.counter, this.reloads, this.applies]) x.reset();
    for (const x of [this.rsActive, this.rsInactive, this.rsWeight, this.rsConfWeight, this.rsUp, this.rsUnresolved, this.rsDrained, this.svcAllDown, this.svcSorry, this.ifaceMode, this.vipAnnounced, this.tableDigest]) x.reset();
    this.directorDrained.reset();
    this.bgpUp.reset();
    if (m.directorDrained !== undefined) this.directorDrained.set(m.directorDrained ? 1 : 0);
    for (const s of m.bgpSessions ?? []) this.bgpUp.set({ session: s.name }, s.established ? 1 : 0);
    for (const a of m.announcements ?? []) this.vipAnnounced.set({ vip: a.vip, reason: a.reason }, a.announced ? 1 : 0);
    for (const s of m.sample.services) {
      const l = { service: s.id };
      this.svcPackets.inc(l, num(s.packets));
      this.svcBytes.inc(l, num(s.bytes));
      this.svcConns.inc(l, num(s.conns));
      for (const r of s.realservers) {
        const rl = { service: s.id, realserver: r.address };
        this.rsPackets.inc(rl, num(r.packets));
        this.rsBytes.inc(rl, num(r.bytes));
        this.rsConns.inc(rl, num(r.conns));
        this.rsActive.set(rl, r.active);
        this.rsInactive.set(rl, r.inactive);
        this.rsWeight.set(rl, r.weight);
      }
    }
    for (const h of m.health) {
      const rl = { service: h.service, realserver: h.address };
      this.rsConfWeight.set(rl, h.configuredWeight);
      this.rsUnresolved.set(rl, h.unresolved ? 1 : 0);
      this.rsDrained.set(rl, h.drained ? 1 : 0);
      if (h.up !== undefined) {
        this.rsUp.set(rl, h.up);
        this.rsChecks.inc(rl, h.checks);
        this.rsCheckFailures.inc(rl, h.failures);
      }
    }
    for (const s of m.services) {
      this.svcAllDown.set({ service: s.service }, s.allDown ? 1 : 0);
      this.svcSorry.set({ service: s.service }, s.sorryActive ? 1 : 0);
    }
    for (const c of COUNTERS) {
      const name = c.name.toLowerCase();
      this.counter.inc({ counter: name, kind: c.kind }, num(m.sample.counters[name] ?? 0n));
    }
    this.connEntries.set(m.sample.connections.entries);
    this.connMax.set(m.sample.connections.max);
    this.connEvicted.set(m.sample.connections.evicted);
    this.connFill.set(m.sample.connections.max ? m.sample.connections.entries / m.sample.connections.max : 0);
    for (const i of m.interfaces) this.ifaceMode.set({ interface: i.name, mode: i.mode, linked: i.linked ? '1' : '0' }, 1);
    if (m.tables) {
      this.tableDigest.set({ service: '', digest: m.tables.digest }, 1);
      for (const s of m.tables.services) this.tableDigest.set({ service: s.service, digest: s.digest }, 1);
    }
    this.reloads.inc({ result: 'ok' }, m.reloads.ok);
    this.reloads.inc({ result: 'error' }, m.reloads.failed);
    this.applies.inc({ result: 'ok' }, m.applies.ok);
    this.applies.inc({ result: 'error' }, m.applies.failed);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Parses Prometheus text exposition (for tests and `top`): `name{labels}` -> value. */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{.*\})?)\s+(\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}
