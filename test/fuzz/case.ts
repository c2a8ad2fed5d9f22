/**
 * A fuzz case: one director configuration (knobs, settings, services, tables, realservers,
 * pre-existing connections / templates / fragment pins with their ages) and the frames sent to
 * it in order. Plain JSON, so a failing case is saved as a fixture (test/fixtures/fuzz/) and
 * replayed exactly, independently of the generator that made it.
 */
import { WAYS, synRecvBucket, synRecvOf } from '../model/synrecv.js';
import { encode, CFG, SVC_KEY, SVC, REAL, CONN, PIN, FWMARK_KEY, FWMARK_VAL, DEST, REAL_CONNS } from '../../src/abi/layout.js';
import type { Knobs, StaticConfig, DynamicState, Service, Real, Settings, MarkEntry } from '../model/types.js';
import { emptyDynamic, TEST_RUN_IFINDEX } from '../model/types.js';
import { serviceKeyHex } from '../model/keys.js';
import { ABI } from '../../src/abi/generated.js';

export interface CaseService {
  addr: string; // hex, 16 bytes
  port: number;
  proto: number;
  family: number;
  id: number;
  tableSlot: number;
  tableSize: number;
  persistTimeout: number;
  persistMask: string; // hex, 16 bytes
  flags: number;
  hashFields: number;
  /** lvs_svc.fwmark (absent: 0): the data plane copies it into sync events. */
  fwmark?: number;
}

export interface CaseReal {
  index: number;
  addr: string; // hex, 16 bytes
  mac: string; // hex, 6 bytes
  smac: string;
  family: number;
  method: number;
  flags: number;
  gen: number;
  ifindex: number;
  svcId: number;
  /** LVS-NAT fields of the slot (absent: 0): realserver port, service port, VIP (hex). */
  port?: number;
  vport?: number;
  vip?: string;
}

/** A pre-existing entry; its timestamp is `ageNs` before the moment it is installed (negative:
 *  in the future). `state` only for connections. */
export interface CaseEntry { key: string; real: number; gen: number; state?: number; ageNs: string }

export interface CaseConfig {
  knobs: Knobs;
  /** The director's lvs_synrecv bucket key (hex, 12 bytes), set when it is loaded: each key is a
   *  director of its own, as each knob combination. Absent (fixtures older than the key):
   *  CASE_SYNRECV_KEYS[0]. */
  synrecvKey?: string;
  /** flags: LVS_CFG_F_* the model acts on (expire-quiescent-template); absent = 0. */
  settings: { tunSrc4: string; tunSrc6: string; seed: number; timeouts: number[]; tunMtu: number; tunTtl: number; flags?: number; syncRefreshS?: number };
  services: CaseService[];
  tables: { slot: number; entries: number[] }[];
  reals: CaseReal[];
  txPorts: number[];
  cursors: { id: number; value: number }[];
  conns: CaseEntry[];
  /** lvs_strays entries (absent in fixtures older than the stray table). */
  strays?: CaseEntry[];
  /** lvs_synrecv ways (SYN_RECV connections of DR / Tun flows): way `way` of the bucket their key
   *  hashes to (if absent: its first way not yet taken, else its last; a later one of the same
   *  slot wins); torn: the check word does
   *  not hold (a way two CPUs wrote at once). Absent in fixtures older than the table. */
  synrecv?: (CaseEntry & { svcId: number; torn?: boolean; way?: number })[];
  persist: CaseEntry[];
  frags: CaseEntry[];
  /** lvs_l2_addrs: accepted destination MACs (hex) per ingress ifindex, with their egress MAC.
   *  Absent (cases saved before it existed): the director's own MAC on the test-run interface. */
  accepted?: { ifindex: number; mac: string; egress: string }[];
  /** When present: the VIP filter (lvs_vip_filter) on, holding every service's bit plus these
   *  extra "maybe" bits (slot * 2 + shift). The model ignores it: a filter that covers every
   *  service must not change what any packet does. */
  vipFilter?: { noise: number[] };
  /** lvs_dests (weight, thresholds) and lvs_real_conns (live counts, overload flag) by realserver
   *  index; absent (cases saved before them): all zero. */
  dests?: { index: number; weight: number; uThresh: number; lThresh: number }[];
  counts?: { index: number; active: number; inactive: number; overloaded: number }[];
  /** lvs_fwmarks entries (firewall-mark classification); absent in cases saved before marks. */
  marks?: CaseMark[];
  /** LVS-NAT cases: the FIB of the namespace they run in (test/packet/fuzz-nat.test.ts), the
   *  destinations with a resolved next hop; absent: none (replies go to the kernel). */
  fib?: { dst: string; ifindex: number; smac: string; dmac: string; mtu: number }[];
}

/** One lvs_fwmarks entry as written: `count` may exceed the ranges the value holds (8). */
export interface CaseMark {
  family: number;
  proto: number;
  prefix: string; // hex, 16 bytes, host bits zero
  plen: number;
  ranges: { from: number; to: number; mark: number }[];
  count: number;
}

export interface FuzzCase {
  /** How to regenerate it: generator seed and configuration number. */
  origin?: { seed: number; config: number };
  note?: string;
  config: CaseConfig;
  frames: string[]; // hex
}

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

/** The lvs_synrecv keys generated cases load with (two, so that the same flows meet in other
 *  buckets; fixed, so that a seed replays; each costs a load per knob combination). */
export const CASE_SYNRECV_KEYS = ['5ac1d0f3e2b7a4968c0b1d2e', 'c3a5e7f90b1d2f4361a8b9cd'] as const;

export const synrecvKeyOf = (c: CaseConfig): string => c.synrecvKey ?? CASE_SYNRECV_KEYS[0];

export function settingsOf(c: CaseConfig): Settings {
  const s = c.settings;
  return {
    tunSrc4: hex(s.tunSrc4), tunSrc6: hex(s.tunSrc6), seed: s.seed >>> 0, timeouts: s.timeouts, tunMtu: s.tunMtu, tunTtl: s.tunTtl, flags: s.flags ?? 0,
    syncRefreshS: (s.syncRefreshS ?? 0) >>> 0,
  };
}

export function serviceOf(s: CaseService): Service {
  return {
    key: { addr: hex(s.addr), port: s.port, proto: s.proto, family: s.family },
    id: s.id, tableSlot: s.tableSlot, tableSize: s.tableSize, persistTimeout: s.persistTimeout,
    persistMask: hex(s.persistMask), flags: s.flags, hashFields: s.hashFields, fwmark: (s.fwmark ?? 0) >>> 0,
  };
}

export function realOf(r: CaseReal): Real {
  return {
    addr: hex(r.addr), mac: hex(r.mac), smac: hex(r.smac), family: r.family, method: r.method,
    flags: r.flags, gen: r.gen, ifindex: r.ifindex, svcId: r.svcId,
    port: r.port ?? 0, vport: r.vport ?? 0, vip: r.vip ? hex(r.vip) : new Uint8Array(16),
  };
}

export function staticConfig(c: CaseConfig, limits: StaticConfig['limits']): StaticConfig {
  const services = new Map<string, Service>();
  for (const s of c.services) services.set(serviceKeyHex(serviceOf(s).key), serviceOf(s));
  const tables = new Map<number, Uint32Array>();
  for (const t of c.tables) if (t.slot < limits.tableSlots && t.entries.length) tables.set(t.slot, Uint32Array.from(t.entries));
  const reals = new Map<number, Real>();
  for (const r of c.reals) if (r.index < limits.reals) reals.set(r.index, realOf(r));
  const accepted = new Map(acceptedOf(c).map((a) => [`${a.ifindex}/${a.mac}`, hex(a.egress)]));
  const marks: MarkEntry[] = (c.marks ?? []).map((m) => ({ family: m.family, proto: m.proto, prefix: hex(m.prefix), plen: m.plen, ranges: m.ranges, count: m.count }));
  const dests = new Map((c.dests ?? []).filter((x) => x.index < limits.reals).map((x) => [x.index, { weight: x.weight >>> 0, uThresh: x.uThresh >>> 0, lThresh: x.lThresh >>> 0 }]));
  const fib = new Map((c.fib ?? []).map((e) => [e.dst, { ifindex: e.ifindex, smac: hex(e.smac), dmac: hex(e.dmac), mtu: e.mtu }]));
  return { marks, knobs: c.knobs, limits, synrecvKey: synrecvKeyOf(c), settings: settingsOf(c), services, tables, reals, txPorts: new Set(c.txPorts), accepted, ingressIfindex: TEST_RUN_IFINDEX, dests, fib };
}

/** The director's MAC in generated frames (and the accepted set of cases that name none). */
export const CASE_DIRECTOR_MAC = '020000000001';

export function acceptedOf(c: CaseConfig): { ifindex: number; mac: string; egress: string }[] {
  return c.accepted ?? [{ ifindex: TEST_RUN_IFINDEX, mac: CASE_DIRECTOR_MAC, egress: CASE_DIRECTOR_MAC }];
}

/** The model's state right after installing the entries at monotonic time `at`. */
export function initialDynamic(c: CaseConfig, at: bigint, limits: StaticConfig['limits']): DynamicState {
  const d = emptyDynamic();
  const when = (e: CaseEntry) => BigInt.asUintN(64, at - BigInt(e.ageNs));
  for (const e of c.conns) d.conns.set(e.key, { lastSeen: when(e), real: e.real, gen: e.gen, state: e.state ?? 0 });
  for (const e of c.strays ?? []) d.strays.set(e.key, { lastSeen: when(e), real: e.real, gen: e.gen, state: e.state ?? 0 });
  for (const e of c.synrecv ?? []) {
    const v = synRecvOf({ key: e.key, lastSeen: when(e), real: e.real, gen: e.gen, svcId: e.svcId });
    const bucket = synRecvBucket(e.key, limits.synRecv, synrecvKeyOf(c));
    let way = (e.way ?? 0) % WAYS;
    if (e.way === undefined) while (way < WAYS - 1 && d.synrecv.has(bucket + way)) way++;
    const slot = bucket + way;
    d.synrecv.set(slot, e.torn ? { ...v, check: (v.check ^ 0x10) >>> 0 } : v);
  }
  for (const e of c.persist) d.persist.set(e.key, { lastSeen: when(e), real: e.real, gen: e.gen });
  for (const e of c.frags) d.frags.set(e.key, { lastSeen: when(e), real: e.real, gen: e.gen });
  for (const cur of c.cursors) if (cur.id < limits.services) d.cursors.set(cur.id, cur.value >>> 0);
  for (const x of c.counts ?? []) if (x.index < limits.reals) d.counts.set(x.index, { active: x.active | 0, inactive: x.inactive | 0, overloaded: x.overloaded >>> 0 });
  return d;
}

// ---- ABI encodings for the kernel maps --------------------------------------------------------

export function encodeSettings(c: CaseConfig): Buffer {
  const s = settingsOf(c);
  const t = Buffer.alloc(24);
  s.timeouts.forEach((v, i) => t.writeUInt32LE(v >>> 0, i * 4));
  return encode(CFG, {
    tun_src4: s.tunSrc4, tun_src6: s.tunSrc6, hash_seed: s.seed, timeout_s: t, tun_mtu: s.tunMtu, tun_ttl: s.tunTtl,
    flags: (c.vipFilter ? ABI.LVS_CFG_F_VIP_FILTER : 0) | (s.flags & ~ABI.LVS_CFG_F_VIP_FILTER), sync_refresh_s: s.syncRefreshS ?? 0,
  });
}

/** The VIP filter's slot of an address, as bpf/lvs_abi.h defines it. */
export function vipFilterSlot(addr16: Uint8Array): number {
  const b = Buffer.from(addr16);
  const fold = (b.readUInt32LE(0) ^ b.readUInt32LE(4) ^ b.readUInt32LE(8) ^ b.readUInt32LE(12)) >>> 0;
  return Math.imul(fold, ABI.LVS_VIP_FILTER_MULT) >>> (32 - ABI.LVS_VIP_FILTER_SLOT_BITS);
}

/** The whole lvs_vip_filter array for a case (LVS_VIP_FILTER_WORDS little-endian u64). */
export function vipFilterWords(c: CaseConfig): Buffer {
  const words = Buffer.alloc(ABI.LVS_VIP_FILTER_WORDS * 8);
  const set = (bit: number) => {
    const byte = Math.floor(bit / 64) * 8 + Math.floor((bit % 64) / 8);
    words[byte] = words[byte]! | (1 << (bit % 8));
  };
  for (const s of c.services) {
    set(vipFilterSlot(hex(s.addr)) * 2 + (s.port === 0 ? ABI.LVS_VF_ALLPORTS_SHIFT : ABI.LVS_VF_PORT_SHIFT));
  }
  for (const bit of c.vipFilter?.noise ?? []) set(bit);
  return words;
}

/** An lvs_fwmarks key and value (bpf/lvs_abi.h). */
export function encodeMark(m: CaseMark): { key: Buffer; value: Buffer } {
  const n = ABI.LVS_FWMARK_RANGES;
  const lo = Buffer.alloc(2 * n);
  const hi = Buffer.alloc(2 * n);
  const mark = Buffer.alloc(4 * n);
  m.ranges.slice(0, n).forEach((r, i) => {
    lo.writeUInt16LE(r.from, 2 * i);
    hi.writeUInt16LE(r.to, 2 * i);
    mark.writeUInt32LE(r.mark >>> 0, 4 * i);
  });
  return {
    key: encode(FWMARK_KEY, { prefixlen: 16 + m.plen, family: m.family, proto: m.proto, addr: hex(m.prefix) }),
    value: encode(FWMARK_VAL, { lo, hi, mark, count: m.count }),
  };
}

export function encodeServiceKey(s: CaseService): Buffer {
  return encode(SVC_KEY, { addr: hex(s.addr), port: s.port, proto: s.proto, family: s.family });
}

export function encodeService(s: CaseService): Buffer {
  return encode(SVC, {
    id: s.id, table_slot: s.tableSlot, table_size: s.tableSize, persist_timeout: s.persistTimeout,
    persist_mask: hex(s.persistMask), flags: s.flags, hash_fields: s.hashFields, fwmark: (s.fwmark ?? 0) >>> 0,
  });
}

export function encodeReal(r: CaseReal): Buffer {
  return encode(REAL, {
    addr: hex(r.addr), mac: hex(r.mac), smac: hex(r.smac), family: r.family, method: r.method,
    flags: r.flags, gen: r.gen, ifindex: r.ifindex, svc_id: r.svcId,
    port: r.port ?? 0, vport: r.vport ?? 0, vip: r.vip ? hex(r.vip) : new Uint8Array(16),
  });
}

export function encodeDest(x: { weight: number; uThresh: number; lThresh: number }): Buffer {
  return encode(DEST, { weight: x.weight >>> 0, u_thresh: x.uThresh >>> 0, l_thresh: x.lThresh >>> 0 });
}

export function encodeCounts(x: { active: number; inactive: number; overloaded: number }): Buffer {
  const b = encode(REAL_CONNS, { overloaded: x.overloaded >>> 0 });
  b.writeInt32LE(x.active | 0, 0);
  b.writeInt32LE(x.inactive | 0, 4);
  return b;
}

export function encodeConn(lastSeen: bigint, real: number, gen: number, state: number): Buffer {
  return encode(CONN, { last_seen_ns: lastSeen, real, gen, state });
}

export function encodePin(lastSeen: bigint, real: number, gen: number): Buffer {
  return encode(PIN, { last_seen_ns: lastSeen, real, gen });
}
