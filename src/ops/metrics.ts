/**
 * Prometheus metrics (prom-client) filled from one reading of the data plane per scrape
 * (Director.readStats: per-CPU sums) plus the health state. Counter names come from
 * src/abi/generated.ts COUNTERS, never a copy.
 */
import type { SyncDaemonStatus } from '../sync/state.js';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { COUNTERS, ABI_VERSION } from '../abi/generated.js';
import { VERSION } from '../version.js';
import type { StatsSample, InterfaceStatus, MapMemory } from '../director/director.js';
import type { TableDigest } from '../director/digest.js';

export const METRIC_PREFIX = 'lvs_xdp_';

/**
 * prom-client's defaults that promtool rejects (gauges named `_total`); `nodejs_active_handles`,
 * `_requests` and `_resources` (per type) carry the same numbers.
 */
const PROCESS_GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export interface HealthRow {
  service: string;
  address: string;
  /** 1 up, 0 down; undefined when not checked. */
  up?: number;
  /** Weight in the configuration file; undefined when not known (`lvs-xdp metrics` without a run). */
  configuredWeight?: number;
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
  /** `run`'s reloads and applies; absent in `lvs-xdp metrics` (no run, no such series). */
  reloads?: { ok: number; failed: number; last?: { at: string; ok: boolean } };
  applies?: { ok: number; failed: number };
  /** When `run` last read and applied its file successfully (start or reload), ISO. */
  lastLoadOk?: string;
  /** When the running configuration was last changed by anyone (the snapshot's time), ISO. */
  configChangedAt?: string;
  /** Per VIP with settings.announce (src/ops/announce.ts). */
  announcements?: { vip: string; announced: boolean; reason: string }[];
  /** The live tables' digest (Director.tableDigest); no series without it. */
  tables?: TableDigest;
  /** With settings.announce: whether the director is drained (lvs-xdp drain --director). */
  directorDrained?: boolean;
  /** With settings.announce.bird-socket: BIRD's BGP sessions. */
  bgpSessions?: { name: string; established: boolean }[];
  /** Connection sync daemons (run's, or read from its sync-status.json); no series without. */
  sync?: SyncDaemonStatus[];
  /** Kernel memory of the maps, lookup tables included (Director.memory); no series without it. */
  memory?: MapMemory;
}

/** A virtual service's labels: the service id ("tcp 10.0.0.1:80", "udp [2001:db8::1]:53") split. */
export type ServiceLabels = { protocol: string; vip: string; port: string };

/** Pure: the inverse of serviceId (src/model/types.ts), for one label per part. */
export function serviceLabels(id: string): ServiceLabels {
  const m = /^(\S+) (?:\[([^\]]+)\]|([^\s:]+)):(\d+)$/.exec(id);
  if (!m) throw new Error(`not a service id: ${JSON.stringify(id)}`);
  return { protocol: m[1]!, vip: m[2] ?? m[3]!, port: m[4]! };
}

function num(v: bigint | number): number {
  return typeof v === 'bigint' ? Number(v) : v;
}

function seconds(iso: string): number {
  return Date.parse(iso) / 1000;
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
  private readonly rsSince: Gauge;
  private readonly rsChecks: Counter;
  private readonly rsCheckFailures: Counter;
  private readonly rsUnresolved: Gauge;
  private readonly rsDrained: Gauge;
  private readonly svcAllDown: Gauge;
  private readonly svcSorry: Gauge;
  private readonly events: Counter;
  private readonly connEntries: Gauge;
  private readonly connMax: Gauge;
  private readonly connFill: Gauge;
  private readonly connEvicted: Counter;
  private readonly ifaceMode: Gauge;
  private readonly reloads: Counter;
  private readonly applies: Counter;
  private readonly lastLoadOk: Gauge;
  private readonly lastReloadOk: Gauge;
  private readonly configChanged: Gauge;
  private readonly vipAnnounced: Gauge;
  private readonly directorDrained: Gauge;
  private readonly bgpUp: Gauge;
  private readonly tableDigest: Gauge;
  private readonly sync: { info: Gauge; sent: Counter; entriesSent: Counter; sendErrors: Counter; received: Counter; dropped: Counter;
    entries: Counter; skipped: Counter; last: Gauge; delay: Gauge };
  private readonly mapMemory: Gauge;
  private readonly tables: Gauge;
  private readonly tableSlots: Gauge;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const r = [this.registry];
    const svc = ['protocol', 'vip', 'port'];
    const rs = [...svc, 'realserver'];
    const c = (name: string, help: string, labelNames: string[]) => new Counter({ name: METRIC_PREFIX + name, help, labelNames, registers: r });
    const g = (name: string, help: string, labelNames: string[]) => new Gauge({ name: METRIC_PREFIX + name, help, labelNames, registers: r });
    g('build_info', 'This build: version, and the data-plane ABI version it loads (1)', ['version', 'abi']).set({ version: VERSION, abi: String(ABI_VERSION) }, 1);
    this.svcPackets = c('service_packets_total', 'Packets scheduled or forwarded for the virtual service (client to director)', svc);
    this.svcBytes = c('service_bytes_total', 'L3 bytes of those packets', svc);
    this.svcConns = c('service_connections_total', 'Connections scheduled for the virtual service', svc);
    this.rsPackets = c('realserver_packets_total', 'Packets forwarded to the realserver', rs);
    this.rsBytes = c('realserver_bytes_total', 'L3 bytes forwarded to the realserver', rs);
    this.rsConns = c('realserver_connections_total', 'Connections scheduled to the realserver', rs);
    this.rsActive = g('realserver_active_connections', 'Connection table entries to the realserver in TCP ESTABLISHED state (ipvsadm ActiveConn)', rs);
    this.rsInactive = g('realserver_inactive_connections', 'Other live connection table entries to the realserver, UDP included (ipvsadm InActConn)', rs);
    this.rsWeight = g('realserver_weight', 'Weight in the data plane now (0 while down or quiesced; absent when removed)', rs);
    this.rsConfWeight = g('realserver_configured_weight', 'Weight in the configuration file (absent when no run says)', rs);
    this.rsUp = g('realserver_up', 'Health check state: 1 up, 0 down (absent when the realserver is not checked)', rs);
    this.rsSince = g('realserver_health_since_timestamp_seconds', 'Since when the realserver is in its health state (Unix time; absent when not checked)', rs);
    this.rsChecks = c('realserver_health_checks_total', 'Health checks run', rs);
    this.rsCheckFailures = c('realserver_health_check_failures_total', 'Health checks that failed', rs);
    this.rsUnresolved = g('realserver_unresolved', '1 while the realserver\'s next hop does not answer ARP/ND: installed without table slots, it takes no new flows', rs);
    this.rsDrained = g('realserver_drained', '1 while the realserver is drained by hand (lvs-xdp drain, -e -w 0) until undrained', rs);
    this.svcAllDown = g('service_all_down', '1 when every realserver with a weight is down (the all-down policy is in force)', svc);
    this.svcSorry = g('service_sorry_server_active', '1 while the sorry server takes the service\'s new flows', svc);
    this.events = c('datapath_events_total', `Data plane outcome, drop and event counters (per-CPU sums; kind drop: a drop reason): ${COUNTERS.map((x) => x.name.toLowerCase()).join(', ')}`, ['counter', 'kind']);
    this.connEntries = g('conntrack_entries', 'Entries in the connection table (lvs_conns)', []);
    this.connMax = g('conntrack_max_entries', 'Size of the connection table', []);
    this.connFill = g('conntrack_fill_ratio', 'Connection table entries / size', []);
    this.connEvicted = c('conntrack_evicted_total', 'Connection table entries evicted by the LRU since load (the table is too small when this grows)', []);
    this.ifaceMode = g('interface_info', 'XDP attachment per interface (mode: native, generic, ...; linked 1 when the program is on the interface)', ['interface', 'mode', 'linked']);
    // run's own series: registered only while given (a gauge without labels always has a sample, 0,
    // which would claim 1970; `lvs-xdp metrics` has no reloads at all, not even their HELP lines).
    this.reloads = new Counter({ name: `${METRIC_PREFIX}config_reloads_total`, help: 'Configuration reloads (SIGHUP) by result', labelNames: ['result'], registers: [] });
    this.applies = new Counter({ name: `${METRIC_PREFIX}config_applies_total`, help: 'Applies of the effective configuration by result', labelNames: ['result'], registers: [] });
    const o = (name: string, help: string) => new Gauge({ name: METRIC_PREFIX + name, help, registers: [] });
    this.lastLoadOk = o('config_last_reload_success_timestamp_seconds', 'When run last read and applied its file successfully, at start or on SIGHUP (Unix time)');
    this.lastReloadOk = o('config_last_reload_successful', '1 when the last reload (or the start) applied the file, 0 when it failed and the running configuration was kept');
    this.configChanged = o('config_last_change_timestamp_seconds', 'When the running configuration was last changed, by run or any other lvs-xdp command (Unix time)');
    this.vipAnnounced = g('vip_announced', 'VIP announcement through the routing daemon: 1 announced, 0 withdrawn; reason: serving, sorry-server, no-healthy-realserver, drained, director-drained, detached, stopped', ['vip', 'reason']);
    this.directorDrained = o('director_drained', '1 while the director is drained (lvs-xdp drain --director): every VIP withdrawn, forwarding goes on');
    this.bgpUp = g('bgp_session_established', 'BGP session of the routing daemon (BIRD, settings.announce.bird-socket): 1 Established, 0 otherwise', ['session']);
    this.tableDigest = g('table_digest_info', 'Digest of the live lookup tables (slot -> realserver address and port, hash seed, hash fields, persistence): equal on directors that pick the same realserver for every flow; protocol, vip and port "" is the overall digest', [...svc, 'digest']);
    // Connection sync (run's daemons): registered only while one runs.
    const sc = (name: string, help: string, labelNames: string[] = []) => new Counter({ name: `${METRIC_PREFIX}sync_${name}`, help, labelNames, registers: [] });
    const sg = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name: `${METRIC_PREFIX}sync_${name}`, help, labelNames, registers: [] });
    this.sync = {
      info: sg('daemon_info', 'A running sync daemon (ipvsadm -L --daemon): role master or backup, its interface, syncid, group and port; source file (settings.sync) or ipvsadm (--start-daemon)', ['role', 'interface', 'syncid', 'group', 'port', 'source']),
      sent: sc('messages_sent_total', 'Sync messages the master sent (each to the group and every peer)'),
      entriesSent: sc('entries_sent_total', 'Entries the master sent: kind conn (connections) or template (persistence templates)', ['kind']),
      sendErrors: sc('send_errors_total', 'Datagrams the master could not hand to the kernel'),
      received: sc('messages_received_total', 'Sync messages the backup accepted'),
      dropped: sc('messages_dropped_total', 'Sync messages the backup dropped: reason invalid (malformed, too long) or syncid (another syncid)', ['reason']),
      entries: sc('entries_inserted_total', 'Entries the backup inserted into its connection table or templates'),
      skipped: sc('entries_skipped_total', 'Entries the backup did not insert, by reason (unknown service or realserver, another forwarding method, a malformed entry, ...)', ['reason']),
      last: sg('last_message_timestamp_seconds', 'When the master last sent / the backup last received a message (Unix time)', ['role']),
      delay: sg('master_delay_seconds', 'The longest a connection event waits in the master before it is on the wire: the send interval plus the last send\'s duration'),
    };
    this.mapMemory = g('map_memory_bytes', 'Kernel memory of each of the director\'s maps (fdinfo memlock, bpftool\'s bytes_memlock); map "lookup_tables": every service\'s lookup table together (lvs_tables itself holds only references). The sum is what status reports', ['map']);
    this.tables = o('lookup_tables', 'Lookup tables in lvs_tables (one per service; a change\'s new ones too while they are switched to)');
    this.tableSlots = o('lookup_table_slots', 'Slots of those lookup tables together (8 bytes of kernel memory each)');
    if (opts.processMetrics) {
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
      for (const n of PROCESS_GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(METRIC_PREFIX + n);
    }
  }

  /** Sets every series from `m` (series of services and realservers that are gone disappear). */
  update(m: MetricsInput): void {
    for (const x of [this.svcPackets, this.svcBytes, this.svcConns, this.rsPackets, this.rsBytes, this.rsConns, this.rsChecks,
      this.rsCheckFailures, this.events, this.connEvicted, this.reloads, this.applies]) x.reset();
    for (const x of [this.rsActive, this.rsInactive, this.rsWeight, this.rsConfWeight, this.rsUp, this.rsSince, this.rsUnresolved, this.rsDrained,
      this.svcAllDown, this.svcSorry, this.ifaceMode, this.vipAnnounced, this.bgpUp, this.tableDigest, this.mapMemory]) x.reset();
    for (const m2 of m.memory?.maps ?? []) this.mapMemory.set({ map: m2.name }, m2.memlock);
    if (m.memory) this.mapMemory.set({ map: 'lookup_tables' }, m.memory.tables.memlock);
    if (this.present(this.tables, m.memory !== undefined)) this.tables.set(m.memory!.tables.count);
    if (this.present(this.tableSlots, m.memory !== undefined)) this.tableSlots.set(m.memory!.tables.slots);
    if (this.present(this.directorDrained, m.directorDrained !== undefined)) this.directorDrained.set(m.directorDrained ? 1 : 0);
    for (const s of m.bgpSessions ?? []) this.bgpUp.set({ session: s.name }, s.established ? 1 : 0);
    for (const a of m.announcements ?? []) this.vipAnnounced.set({ vip: a.vip, reason: a.reason }, a.announced ? 1 : 0);
    for (const s of m.sample.services) {
      const l = serviceLabels(s.id);
      this.svcPackets.inc(l, num(s.packets));
      this.svcBytes.inc(l, num(s.bytes));
      this.svcConns.inc(l, num(s.conns));
      for (const r of s.realservers) {
        const rl = { ...l, realserver: r.address };
        this.rsPackets.inc(rl, num(r.packets));
        this.rsBytes.inc(rl, num(r.bytes));
        this.rsConns.inc(rl, num(r.conns));
        this.rsActive.set(rl, r.active);
        this.rsInactive.set(rl, r.inactive);
        this.rsWeight.set(rl, r.weight);
      }
    }
    for (const h of m.health) {
      const rl = { ...serviceLabels(h.service), realserver: h.address };
      if (h.configuredWeight !== undefined) this.rsConfWeight.set(rl, h.configuredWeight);
      this.rsUnresolved.set(rl, h.unresolved ? 1 : 0);
      this.rsDrained.set(rl, h.drained ? 1 : 0);
      if (h.up !== undefined) {
        this.rsUp.set(rl, h.up);
        this.rsChecks.inc(rl, h.checks);
        this.rsCheckFailures.inc(rl, h.failures);
        if (h.since) this.rsSince.set(rl, seconds(h.since));
      }
    }
    for (const s of m.services) {
      const l = serviceLabels(s.service);
      this.svcAllDown.set(l, s.allDown ? 1 : 0);
      this.svcSorry.set(l, s.sorryActive ? 1 : 0);
    }
    for (const c of COUNTERS) {
      const name = c.name.toLowerCase();
      this.events.inc({ counter: name, kind: c.kind }, num(m.sample.counters[name] ?? 0n));
    }
    this.connEntries.set(m.sample.connections.entries);
    this.connMax.set(m.sample.connections.max);
    this.connEvicted.inc(m.sample.connections.evicted);
    this.connFill.set(m.sample.connections.max ? m.sample.connections.entries / m.sample.connections.max : 0);
    for (const i of m.interfaces) this.ifaceMode.set({ interface: i.name, mode: i.mode, linked: i.linked ? '1' : '0' }, 1);
    if (m.tables) {
      this.tableDigest.set({ protocol: '', vip: '', port: '', digest: m.tables.digest }, 1);
      for (const s of m.tables.services) this.tableDigest.set({ ...serviceLabels(s.service), digest: s.digest }, 1);
    }
    if (this.present(this.reloads, m.reloads !== undefined)) {
      this.reloads.inc({ result: 'ok' }, m.reloads!.ok);
      this.reloads.inc({ result: 'error' }, m.reloads!.failed);
    }
    if (this.present(this.applies, m.applies !== undefined)) {
      this.applies.inc({ result: 'ok' }, m.applies!.ok);
      this.applies.inc({ result: 'error' }, m.applies!.failed);
    }
    if (this.present(this.lastReloadOk, m.reloads !== undefined)) this.lastReloadOk.set(m.reloads!.last?.ok === false ? 0 : 1);
    if (this.present(this.lastLoadOk, m.lastLoadOk !== undefined)) this.lastLoadOk.set(seconds(m.lastLoadOk!));
    if (this.present(this.configChanged, m.configChangedAt !== undefined)) this.configChanged.set(seconds(m.configChangedAt!));
    this.updateSync(m.sync ?? []);
  }

  private updateSync(daemons: readonly SyncDaemonStatus[]): void {
    const x = this.sync;
    const master = daemons.find((d) => d.role === 'master');
    const backup = daemons.find((d) => d.role === 'backup');
    for (const s of [x.info, x.last]) if (this.present(s, daemons.length > 0)) s.reset();
    for (const s of [x.sent, x.entriesSent, x.sendErrors, x.delay]) if (this.present(s, master?.sent !== undefined)) s.reset();
    for (const s of [x.received, x.dropped, x.entries, x.skipped]) if (this.present(s, backup?.received !== undefined)) s.reset();
    for (const d of daemons) {
      x.info.set({ role: d.role, interface: d.mcastInterface, syncid: String(d.syncid), group: d.mcastGroup, port: String(d.mcastPort), source: d.source }, 1);
      const last = d.sent?.lastAt ?? d.received?.lastAt;
      if (last) x.last.set({ role: d.role }, seconds(last));
    }
    if (master?.sent) {
      const s = master.sent;
      x.sent.inc(s.messages);
      x.entriesSent.inc({ kind: 'conn' }, s.conns);
      x.entriesSent.inc({ kind: 'template' }, s.templates);
      x.sendErrors.inc(s.sendErrors);
      x.delay.set((s.intervalMs + s.lastSendMs) / 1000);
    }
    if (backup?.received) {
      const r = backup.received;
      x.received.inc(r.messages);
      x.dropped.inc({ reason: 'invalid' }, r.invalid);
      x.dropped.inc({ reason: 'syncid' }, r.filtered);
      x.entries.inc(r.inserted);
      for (const [reason, n] of Object.entries(r.skipped)) x.skipped.inc({ reason }, n);
      if (r.droppedEntries) x.skipped.inc({ reason: 'malformed' }, r.droppedEntries);
    }
  }

  /** Registers `metric` while `want`, unregisters it otherwise; returns `want`. */
  private present(metric: Counter | Gauge, want: boolean): boolean {
    const name = (metric as unknown as { name: string }).name;
    const registered = this.registry.getSingleMetric(name) !== undefined;
    if (want && !registered) this.registry.registerMetric(metric);
    if (!want && registered) this.registry.removeSingleMetric(name);
    return want;
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
