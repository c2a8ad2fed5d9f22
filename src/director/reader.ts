/**
 * Reading a running director: counters summed over CPUs, per service and realserver statistics,
 * the connection table as ipvsadm -L -c shows it, and the lookup tables as the kernel holds them.
 * Each map is dumped at most once per sample (one batch syscall series, not a lookup per index),
 * so a /metrics scrape costs one pass over the connection table.
 */
import { BpfMap } from '../native/index.js';
import { decode, encode, SVC, STATS, FLOW_KEY, CONN, REAL, CFG, DEST, REAL_CONNS } from '../abi/layout.js';
import { ABI, COUNTERS, STATE_NAMES } from '../abi/generated.js';
import { compareServices, serviceId, type VirtualService, type Realserver } from '../model/types.js';
import { realId, serviceKey, timeoutsByState } from '../dataplane/compile.js';
import { formatAddress } from '../model/address.js';
import { compareText } from '../model/order.js';
import { u32, PARKED_TABLE, type DirectorMaps } from './writer.js';
import type { AppliedState } from './snapshot.js';
import type { ConnectionInfo, Numbers, ServiceStats, StatsSample, TablesMemory } from './types.js';
import { markText, realsByIndex, type ServiceTable, type SlotReal, type TablesView } from './digest.js';
import { decodeAccepted, decodeL2If, type AcceptedMac, type AcceptedIf } from '../dataplane/l2addrs.js';
import { readSynRecv } from './synrecv.js';


const ZERO: Numbers = { packets: 0n, bytes: 0n, conns: 0n, outPackets: 0n, outBytes: 0n };

const DIR_FIELD = FLOW_KEY.fields.find((f) => f.name === 'dir')!;
/** An lvs_conns key of an LVS-NAT reply entry (lvs_flow_key.dir = LVS_DIR_REPLY). */
export function isReplyKey(key: Buffer): boolean {
  return key.readUInt16LE(DIR_FIELD.offset) === ABI.LVS_DIR_REPLY;
}

/** Per-CPU STATS values of one map, summed: index -> totals. */
function sumStats(map: BpfMap): Map<number, Numbers> {
  const out = new Map<number, Numbers>();
  const { keys, values } = map.entries();
  keys.forEach((k, i) => {
    const t = { packets: 0n, bytes: 0n, conns: 0n, outPackets: 0n, outBytes: 0n };
    for (const b of map.splitPerCpu(values[i]!)) {
      const v = decode(STATS, b);
      t.packets += v.packets as bigint;
      t.bytes += v.bytes as bigint;
      t.conns += v.conns as bigint;
      t.outPackets += v.out_packets as bigint;
      t.outBytes += v.out_bytes as bigint;
    }
    out.set(k.readUInt32LE(0), t);
  });
  return out;
}

/** Idle timeout per connection state (index = LVS_CS_*), as the data plane applies them. */
export function stateTimeouts(applied: AppliedState): number[] {
  return timeoutsByState(applied.config.settings?.timeouts);
}

/** A realserver slot's live connection counts as lvs_real_conns holds them. */
export interface LiveCounts { active: number; inactive: number; overloaded: boolean }

export function decodeLiveCounts(b: Buffer): LiveCounts {
  const v = decode(REAL_CONNS, b);
  return { active: (v.active as number) | 0, inactive: (v.inactive as number) | 0, overloaded: (v.overloaded as number) !== 0 };
}

/**
 * The counts a slot should hold after a recount: `counted` (the connection table's live entries
 * of its generation), the overload flag carried by IPVS's rules from the one held (`held`): set at
 * or above the upper threshold, cleared below the lower (3/4 of the upper without one), kept in
 * between. null when `held` is already right.
 */
export function fixedCounts(held: LiveCounts, counted: { active: number; inactive: number }, upper: number, lower: number): LiveCounts | null {
  const total = counted.active + counted.inactive;
  let overloaded = held.overloaded;
  if (upper > 0 && total >= upper) overloaded = true;
  else if (lower > 0 ? total < lower : upper === 0 || total * 4 < upper * 3) overloaded = false;
  const want = { active: counted.active, inactive: counted.inactive, overloaded };
  return want.active === held.active && want.inactive === held.inactive && want.overloaded === held.overloaded ? null : want;
}

export function encodeLiveCounts(c: LiveCounts): Buffer {
  const b = encode(REAL_CONNS, { overloaded: c.overloaded ? 1 : 0 });
  b.writeInt32LE(c.active, 0);
  b.writeInt32LE(c.inactive, 4);
  return b;
}

export class DirectorReader {
  constructor(private readonly maps: DirectorMaps) {}

  /** The named counters, each summed over all CPUs (names in lower case). */
  counters(): Record<string, bigint> {
    const map = this.maps.lvs_counters;
    const byIndex = new Map<number, bigint>();
    const { keys, values } = map.entries();
    keys.forEach((k, i) => byIndex.set(k.readUInt32LE(0), map.splitPerCpu(values[i]!).reduce((t, b) => t + b.readBigUInt64LE(0), 0n)));
    return Object.fromEntries(COUNTERS.map((c) => [c.name.toLowerCase(), byIndex.get(c.index) ?? 0n]));
  }

  /**
   * Entries the LRU evicted since load: every new flow (and every promoted stray) inserts a key,
   * except those that replace an entry of the same flow (real gone, reused, expired); an entry
   * found stale by a packet without SYN is deleted instead (the packet is a stray), which leaves
   * the difference the same.
   */
  static evictions(entries: number, c: Record<string, bigint>): number {
    // a DR / Tun SYN is counted new but waits in lvs_synrecv; it is inserted when entered
    const inserts = c.conn_new! - (c.conn_synrecv_new ?? 0n) + (c.conn_synrecv_entered ?? 0n) + (c.conn_promoted ?? 0n) -
      c.conn_real_gone! - c.conn_reused! - c.conn_expired!;
    return Math.max(0, Number(inserts) - entries);
  }

  /** The accepted destination MACs as lvs_l2_addrs holds them. */
  accepted(): AcceptedMac[] {
    const { keys, values } = this.maps.lvs_l2_addrs.entries();
    return keys.map((k, i) => decodeAccepted(k, values[i]!)).sort((a, b) => a.ifindex - b.ifindex || compareText(a.mac, b.mac));
  }

  /** The lvs_l2_ifs entries of these ingress ifindexes (those below LVS_L2_IF_SLOTS). */
  acceptedIfs(ifindexes: Iterable<number>): Map<number, AcceptedIf> {
    const out = new Map<number, AcceptedIf>();
    for (const i of new Set(ifindexes)) {
      if (i >= ABI.LVS_L2_IF_SLOTS) continue;
      const v = this.maps.lvs_l2_ifs.lookup(u32(i));
      if (v) out.set(i, decodeL2If(i, v));
    }
    return out;
  }

  /** The accepted-MAC state acceptStep starts from: lvs_l2_addrs, and lvs_l2_ifs for its
   *  ifindexes and `also`'s. */
  acceptedState(also: Iterable<number> = []): { current: AcceptedMac[]; held: Map<number, AcceptedIf> } {
    const current = this.accepted();
    return { current, held: this.acceptedIfs([...current.map((a) => a.ifindex), ...also]) };
  }

  /** Connection-table fill: entries present, size, LRU evictions since load. */
  fill(counters = this.counters()): { entries: number; max: number; evicted: number } {
    const entries = this.maps.lvs_conns.entries().keys.length;
    return { entries, max: this.maps.lvs_conns.maxEntries, evicted: DirectorReader.evictions(entries, counters) };
  }

  /** Per-CPU counters summed, per service and realserver, with connection-table counts. */
  stats(applied: AppliedState): StatsSample {
    const at = process.hrtime.bigint();
    const { byReal, entries, clientEntries } = this.connectionCounts(applied, at);
    const svcStats = sumStats(this.maps.lvs_svc_stats);
    const realStats = sumStats(this.maps.lvs_real_stats);
    const alloc = applied.allocation;
    const services: ServiceStats[] = [...applied.config.services].sort(compareServices).map((s) => {
      const id = serviceId(s);
      const svcId = alloc.services[id];
      return {
        id, ...(svcId === undefined ? ZERO : svcStats.get(svcId) ?? ZERO),
        realservers: s.realservers.map((r) => {
          const a = alloc.reals[realId(s, r)];
          const n = a ? realStats.get(a.index) ?? ZERO : ZERO;
          const c = a ? byReal.get(`${a.index}/${a.gen}`) : undefined;
          return { address: r.address, port: r.port, weight: r.weight, ...n, active: c?.active ?? 0, inactive: c?.inactive ?? 0 };
        }),
      };
    });
    const counters = this.counters();
    return { at, services, counters, connections: { entries, max: this.maps.lvs_conns.maxEntries, evicted: DirectorReader.evictions(clientEntries, counters) } };
  }

  /** ActiveConn (TCP ESTABLISHED) / InActConn (other live states, UDP included: IPVS starts every
   *  connection inactive and only TCP's state machine makes it active; live strays, TCP flows
   *  seen without a SYN and not yet shown to be real, count as inactive) per slot "index/gen". */
  connectionCounts(applied: AppliedState, now: bigint): { byReal: Map<string, { active: number; inactive: number }>; entries: number; clientEntries: number } {
    const byReal = new Map<string, { active: number; inactive: number }>();
    const timeouts = stateTimeouts(applied);
    const count = (v: Buffer, timeout: (state: number) => number) => {
      const c = decode(CONN, v);
      const state = c.state as number;
      const age = Number((now - (c.last_seen_ns as bigint)) / 1_000_000_000n);
      if (age > timeout(state)) return;
      const k = `${c.real as number}/${c.gen as number}`;
      const e = byReal.get(k) ?? { active: 0, inactive: 0 };
      if (state === ABI.LVS_CS_ESTABLISHED && timeout === byState) e.active++;
      else e.inactive++;
      byReal.set(k, e);
    };
    const byState = (state: number) => timeouts[state] ?? 0;
    const { keys, values } = this.maps.lvs_conns.entries();
    // An LVS-NAT flow's reply entry (dir LVS_DIR_REPLY) is the same connection: counted once.
    let clientEntries = 0;
    values.forEach((v, i) => {
      if (isReplyKey(keys[i]!)) return;
      clientEntries++;
      count(v, byState);
    });
    for (const v of this.maps.lvs_strays.entries().values) count(v, () => ABI.LVS_STRAY_TIMEOUT_S);
    // SYN_RECV connections of DR / Tun flows wait in lvs_synrecv (bpf/lvs_synrecv.h): live ones
    // are InActConn, as the data plane bound them.
    for (const e of readSynRecv(this.maps.lvs_synrecv)) {
      if (Number((now - e.lastSeenNs) / 1_000_000_000n) > (timeouts[ABI.LVS_CS_SYN_RECV] ?? 0)) continue;
      const k = `${e.real}/${e.gen}`;
      const c = byReal.get(k) ?? { active: 0, inactive: 0 };
      c.inactive++;
      byReal.set(k, c);
    }
    return { byReal, entries: values.length, clientEntries };
  }

  /** Every in-use realserver slot's live counts as the data plane holds them, by index. */
  liveCounts(applied: AppliedState): Map<number, LiveCounts & { upper: number; lower: number }> {
    const out = new Map<number, LiveCounts & { upper: number; lower: number }>();
    for (const a of Object.values(applied.allocation.reals)) {
      const c = this.maps.lvs_real_conns.lookup(u32(a.index));
      const d = this.maps.lvs_dests.lookup(u32(a.index));
      if (!c || !d) continue;
      const dv = decode(DEST, d);
      out.set(a.index, { ...decodeLiveCounts(c), upper: dv.u_thresh as number, lower: dv.l_thresh as number });
    }
    return out;
  }

  /**
   * The recount: every in-use slot's counts from the connection table (connectionCounts), where
   * they differ from what the data plane holds. The data plane sees no entry that expires or is
   * evicted without a packet; without this its counts only grow.
   */
  connCountFixes(applied: AppliedState, now: bigint = process.hrtime.bigint()): { index: number; value: Buffer; was: LiveCounts; now: LiveCounts }[] {
    const held = this.liveCounts(applied);
    const { byReal } = this.connectionCounts(applied, now);
    const fixes: { index: number; value: Buffer; was: LiveCounts; now: LiveCounts }[] = [];
    for (const a of Object.values(applied.allocation.reals)) {
      const h = held.get(a.index);
      if (!h) continue;
      const want = fixedCounts(h, byReal.get(`${a.index}/${a.gen}`) ?? { active: 0, inactive: 0 }, h.upper, h.lower);
      if (want) fixes.push({ index: a.index, value: encodeLiveCounts(want), was: { active: h.active, inactive: h.inactive, overloaded: h.overloaded }, now: want });
    }
    return fixes;
  }

  /** The connection table, as `ipvsadm -L -n -c` shows it (live entries only). */
  connections(applied: AppliedState): ConnectionInfo[] {
    const now = process.hrtime.bigint();
    const timeouts = stateTimeouts(applied);
    const bySlot = new Map<string, { svc: VirtualService; rs: Realserver }>();
    for (const s of applied.config.services) {
      for (const r of s.realservers) {
        const a = applied.allocation.reals[realId(s, r)];
        if (a) bySlot.set(`${a.index}/${a.gen}`, { svc: s, rs: r });
      }
    }
    const { keys, values } = this.maps.lvs_conns.entries();
    const out: ConnectionInfo[] = [];
    // lvs_conns, then the SYN_RECV connections of DR / Tun flows (lvs_synrecv): one list, as
    // IPVS's connection table holds both.
    const rows: { kb: Buffer; real: number; gen: number; state: number; lastSeen: bigint }[] = [];
    keys.forEach((kb, i) => {
      if (isReplyKey(kb)) return;
      const c = decode(CONN, values[i]!);
      rows.push({ kb, real: c.real as number, gen: c.gen as number, state: c.state as number, lastSeen: c.last_seen_ns as bigint });
    });
    for (const e of readSynRecv(this.maps.lvs_synrecv)) {
      rows.push({ kb: e.key, real: e.real, gen: e.gen, state: ABI.LVS_CS_SYN_RECV, lastSeen: e.lastSeenNs });
    }
    for (const { kb, real, gen, state, lastSeen } of rows) {
      const k = decode(FLOW_KEY, kb);
      const age = Number(now - lastSeen) / 1e9;
      const expire = (timeouts[state] ?? 0) - age;
      if (expire < 0) continue;
      const fam = k.family as number;
      const addr = (b: Uint8Array) => formatAddress({ family: fam === 6 ? 6 : 4, bytes: fam === 6 ? b : b.subarray(0, 4) } as never);
      const owner = bySlot.get(`${real}/${gen}`);
      out.push({
        protocol: (k.proto as number) === 6 ? 'tcp' : 'udp',
        state: state === ABI.LVS_CS_UDP ? 'UDP' : STATE_NAMES[state] ?? String(state),
        expire,
        client: { address: addr(k.saddr as Uint8Array), port: k.sport as number },
        virtual: { address: addr(k.daddr as Uint8Array), port: k.dport as number },
        // LVS-NAT sends to the realserver's own port (0: the client's destination port).
        realserver: owner ? { address: owner.rs.address, port: owner.rs.method === 'nat' && owner.rs.port ? owner.rs.port : (k.dport as number) } : undefined,
        service: owner ? serviceId(owner.svc) : undefined,
      });
    }
    return out;
  }

  /**
   * The lookup tables as the kernel holds them: per service, slot -> realserver address (or
   * null for an empty slot). Read back from the live inner maps, not from the snapshot.
   */
  tables(applied: AppliedState): Map<string, (string | null)[]> {
    const out = new Map<string, (string | null)[]>();
    const byIndex = new Map<number, string>();
    for (const [id, a] of Object.entries(applied.allocation.reals)) byIndex.set(a.index, id.slice(id.indexOf('/') + 1));
    for (const s of applied.config.services) {
      const live = this.maps.lvs_services.lookup(serviceKey(s));
      if (!live) continue;
      const idBuf = this.maps.lvs_tables.lookup(u32(decode(SVC, live).table_slot as number));
      if (!idBuf) continue;
      const inner = BpfMap.fromId(idBuf.readUInt32LE(0));
      try {
        out.set(serviceId(s), inner.entries().values.map((v) => byIndex.get(v.readUInt32LE(0)) ?? null));
      } finally {
        inner.close();
      }
    }
    return out;
  }

  /**
   * What decides a flow's realserver, as the kernel holds it (for the table digest): the hash
   * seed from lvs_cfg, each service's lvs_services entry and table, each slot's realserver
   * address and state from lvs_reals. Only the port comes from the applied configuration (the
   * data plane does not rewrite ports). Services without a live entry or table are left out,
   * so a director whose maps lost one shows another digest.
   */
  tableViews(applied: AppliedState): TablesView {
    const cfg = this.maps.lvs_cfg.lookup(u32(0));
    const hashSeed = cfg ? (decode(CFG, cfg).hash_seed as number) : 0;
    const ports = realsByIndex(applied);
    const reals = new Map<number, { address: string; active: boolean }>();
    const { keys: rk, values: rv } = this.maps.lvs_reals.entries();
    rk.forEach((k, i) => {
      const r = decode(REAL, rv[i]!);
      const fam = r.family as number;
      if (fam !== 4 && fam !== 6) return;
      const b = r.addr as Uint8Array;
      reals.set(k.readUInt32LE(0), {
        address: formatAddress({ family: fam, bytes: fam === 6 ? b : b.subarray(0, 4) } as never),
        active: ((r.flags as number) & ABI.LVS_REAL_F_ACTIVE) !== 0,
      });
    });
    // One object per realserver slot: the digest hashes each realserver once, not each table slot.
    const made = new Map<number, SlotReal>();
    const slot = (i: number): SlotReal => {
      let x = made.get(i);
      if (!x) {
        const r = reals.get(i);
        // An index lvs_reals does not hold: shown as such, never as a realserver.
        x = r ? { address: r.address, port: ports.get(i)?.port ?? 0, active: r.active } : { address: `index ${i}`, port: 0, active: false };
        made.set(i, x);
      }
      return x;
    };
    const services: ServiceTable[] = [];
    for (const s of applied.config.services) {
      const live = this.maps.lvs_services.lookup(serviceKey(s));
      if (!live) continue;
      const v = decode(SVC, live);
      const idBuf = this.maps.lvs_tables.lookup(u32(v.table_slot as number));
      if (!idBuf) continue;
      const inner = BpfMap.fromId(idBuf.readUInt32LE(0));
      let entries: number[];
      try {
        const { keys, values } = inner.entries();
        entries = new Array<number>(keys.length);
        keys.forEach((k, i) => { entries[k.readUInt32LE(0)] = values[i]!.readUInt32LE(0); });
      } finally {
        inner.close();
      }
      services.push({
        service: serviceId(s),
        scheduler: s.scheduler,
        tableSize: v.table_size as number,
        hashFields: v.hash_fields as number,
        flags: v.flags as number,
        persistMask: Buffer.from(v.persist_mask as Uint8Array).toString('hex'),
        persistTimeout: v.persist_timeout as number,
        slots: entries.map((i) => (i === ABI.LVS_REAL_NONE ? null : slot(i))),
      });
    }
    // Firewall-mark classification decides which service a flow is, as the tables decide its
    // realserver. A director of an older ABI has no lvs_fwmarks.
    const marks: string[] = [];
    const fw = this.maps.lvs_fwmarks;
    if (fw) for (const k of fw.keys()) { const v = fw.lookup(k); if (v) marks.push(markText(k, v)); }
    return { hashSeed, services, ...(marks.length ? { marks: marks.sort() } : {}) };
  }

  /** The lookup tables lvs_tables holds now (a change's new tables included while they are
   *  switched to): how many, their slots, and the kernel memory charged to them (each inner
   *  array's fdinfo memlock: 8 bytes a slot, as the kernel stores array values). */
  tablesMemory(): TablesMemory {
    const out: TablesMemory = { count: 0, slots: 0, memlock: 0 };
    // A spare slot may name its service's live table too (plan.ts: retire): count each table once.
    const ids = new Set(this.maps.lvs_tables.entries().values.map((v) => v.readUInt32LE(0)));
    for (const id of ids) {
      let inner: BpfMap;
      try {
        inner = BpfMap.fromId(id);
      } catch {
        continue; // replaced and freed since the dump: it is memory no more
      }
      try {
        out.memlock += inner.memlock;
        if (inner.name === PARKED_TABLE) continue; // freed slots' placeholder (writer.ts parkTables)
        out.count++;
        out.slots += inner.maxEntries;
      } finally {
        inner.close();
      }
    }
    return out;
  }

  /** The lvs_tables slot each service's entry points at now (snapshots written before the
   *  plan/commit split did not record it). */
  liveTableSlots(applied: AppliedState): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of applied.config.services) {
      const live = this.maps.lvs_services.lookup(serviceKey(s));
      if (live) out[serviceId(s)] = decode(SVC, live).table_slot as number;
    }
    return out;
  }
}
