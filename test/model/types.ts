/**
 * The reference model's view of a director: what the control plane configured (static during a
 * run) and what the data plane keeps (connections, persistence templates, fragment pins, rr
 * cursors). Written from the README's "Data plane" sections; see ./step.ts for the decision.
 *
 * Addresses are 16-byte arrays in network order (IPv4 in the first 4 bytes). Map keys are the
 * hex of the key's ABI bytes (bpf/lvs_abi.h), so model and kernel maps compare key for key.
 */
import { COUNTERS } from '../../src/abi/generated.js';
import type { SynRecv } from './synrecv.js';

export type CounterName = (typeof COUNTERS)[number]['name'];

export const FAMILY = { V4: 4, V6: 6 } as const;
export const PROTO = { ICMP: 1, IPIP: 4, TCP: 6, UDP: 17, IPV6: 41, ICMPV6: 58 } as const;

/** Load-time knobs (.rodata): the README's "Load-time knobs" table. */
export interface Knobs { ipv6: boolean; tun: boolean; icmp: boolean; frag: boolean }
export const ALL_KNOBS_ON: Knobs = { ipv6: true, tun: true, icmp: true, frag: true };

/** Map sizes that bound array lookups (an index past the end finds nothing). */
/** synRecv: lvs_synrecv's slots (the slot hash is taken over it). */
export interface Limits { services: number; reals: number; tableSlots: number; synRecv: number }

/** lvs_cfg: runtime settings. */
export interface Settings {
  tunSrc4: Uint8Array; // 4 bytes
  tunSrc6: Uint8Array; // 16 bytes
  seed: number;
  timeouts: number[]; // seconds, by connection state (LVS_CS_*), 6 entries
  tunMtu: number; // 0 = 1500
  tunTtl: number; // 0 = 64
  flags: number; // LVS_CFG_F_* the data plane acts on (LVS_CFG_F_EXPIRE_QUIESCENT)
  /** lvs_cfg.sync_refresh_s: connection sync's refresh period, seconds (absent: 0). */
  syncRefreshS?: number;
}

export interface ServiceKey { addr: Uint8Array; port: number; proto: number; family: number }

export interface Service {
  key: ServiceKey;
  id: number;
  tableSlot: number;
  tableSize: number;
  persistTimeout: number; // seconds
  persistMask: Uint8Array; // 16 bytes
  flags: number; // LVS_SVC_F_*
  hashFields: number; // LVS_HF_*
  /** lvs_svc.fwmark: copied into sync events (absent: 0). */
  fwmark?: number;
}

export interface Real {
  addr: Uint8Array; // 16
  mac: Uint8Array; // 6
  smac: Uint8Array; // 6
  family: number;
  method: number;
  flags: number;
  gen: number;
  ifindex: number;
  svcId: number;
  /** LVS-NAT (method LVS_FWD_NAT): the realserver's port (0: unchanged), the service's port
   *  (0: unchanged) and VIP its replies are rewritten back to. Absent: zero. */
  port?: number;
  vport?: number;
  vip?: Uint8Array; // 16
}

/** lvs_dests: a realserver's weight and thresholds (an absent index reads as all zero). */
export interface Dest { weight: number; uThresh: number; lThresh: number }
/** lvs_real_conns: live connection counts (s32 active / inactive) and the overload flag. */
export interface Counts { active: number; inactive: number; overloaded: number }
/** What the kernel's FIB (bpf_fib_lookup) answers for a destination with a resolved next hop. */
export interface FibEntry { ifindex: number; smac: Uint8Array; dmac: Uint8Array; mtu: number }

/** A connection entry. lastSeen is bpf_ktime_get_ns() (u64) of its last refresh. */
export interface Conn { lastSeen: bigint; real: number; gen: number; state: number }
/** A persistence template or a first fragment's pin. */
export interface Pin { lastSeen: bigint; real: number; gen: number }

/** An lvs_fwmarks entry (firewall-mark classification): (family, proto, prefix) -> port ranges;
 *  `count` as written (the data plane reads at most LVS_FWMARK_RANGES of them). */
export interface MarkEntry {
  family: number;
  proto: number;
  prefix: Uint8Array; // 16 bytes, host bits zero
  plen: number; // address prefix length
  ranges: { from: number; to: number; mark: number }[];
  count: number;
}

export interface StaticConfig {
  knobs: Knobs;
  /** lvs_fwmarks (absent: no entries). */
  marks?: MarkEntry[];
  limits: Limits;
  /** The program's lvs_synrecv bucket key (hex, 12 bytes: cfg_key_synrecv0..2), set at load. */
  synrecvKey: string;
  settings: Settings;
  services: Map<string, Service>; // serviceKeyId(key) -> service
  tables: Map<number, Uint32Array>; // lvs_tables slot -> inner table
  reals: Map<number, Real>; // index -> slot content; an absent index below limits.reals is all zero
  txPorts: Set<number>; // ifindexes present in lvs_tx_ports
  /** lvs_l2_addrs: `${ifindex}/${mac hex}` -> egress MAC (the source of what goes back out). */
  accepted: Map<string, Uint8Array>;
  /** The interface frames arrive on (ctx->ingress_ifindex). */
  ingressIfindex: number;
  /** lvs_dests by realserver index (absent below limits.reals: all zero). */
  dests: Map<number, Dest>;
  /** The namespace's FIB toward LVS-NAT clients: destination address (hex, 16 bytes) -> its
   *  resolved next hop; any other destination has none (the reply goes to the kernel). */
  fib?: Map<string, FibEntry>;
}

/** BPF_PROG_TEST_RUN without a context runs frames as received on the namespace's loopback. */
export const TEST_RUN_IFINDEX = 1;

export interface DynamicState {
  conns: Map<string, Conn>;
  /** lvs_strays: TCP flows seen without SYN and not yet promoted (state NONE). */
  strays: Map<string, Conn>;
  persist: Map<string, Pin>;
  frags: Map<string, Pin>;
  /** rr / wrr cursor per service id (the kernel keeps one per CPU; the model one per run). */
  cursors: Map<number, number>;
  /** lvs_real_conns by realserver index (absent below limits.reals: all zero). */
  counts: Map<number, Counts>;
  /** lvs_synrecv by slot (absent: all zero): SYN_RECV connections of DR / Tun flows. */
  synrecv: Map<number, SynRecv>;
}

export type Write =
  | { map: 'conns'; key: string; value: Conn | null } // null: deleted
  | { map: 'strays'; key: string; value: Conn | null }
  | { map: 'persist'; key: string; value: Pin }
  | { map: 'frags'; key: string; value: Pin }
  | { map: 'cursor'; id: number; value: number }
  | { map: 'counts'; index: number; value: Counts }
  | { map: 'synrecv'; slot: number; value: SynRecv | null }; // null: cleared (all zero)

/** outPackets / outBytes: LVS-NAT replies (IPVS OutPkts / OutBytes); absent = 0. */
export interface StatsDelta { packets: number; bytes: number; conns: number; outPackets?: number; outBytes?: number }

/** Everything one packet does. */
export interface Outcome {
  action: number;
  /** Output frame for TX / REDIRECT; the input (untouched) for PASS; null for DROP. */
  out: Buffer | null;
  /** Counters incremented, in order (a name may repeat). */
  counters: CounterName[];
  svcStats: Map<number, StatsDelta>;
  realStats: Map<number, StatsDelta>;
  writes: Write[];
  /** Connection sync events written to lvs_sync_events (struct lvs_sync_event bytes), in order. */
  sync: Buffer[];
  /** Short trace of the decision, for failure reports. */
  path: string[];
}

export function emptyDynamic(): DynamicState {
  return { conns: new Map(), strays: new Map(), persist: new Map(), frags: new Map(), cursors: new Map(), counts: new Map(), synrecv: new Map() };
}

export function cloneDynamic(d: DynamicState): DynamicState {
  return {
    conns: new Map([...d.conns].map(([k, v]) => [k, { ...v }])),
    strays: new Map([...d.strays].map(([k, v]) => [k, { ...v }])),
    persist: new Map([...d.persist].map(([k, v]) => [k, { ...v }])),
    frags: new Map([...d.frags].map(([k, v]) => [k, { ...v }])),
    cursors: new Map(d.cursors),
    counts: new Map([...d.counts].map(([k, v]) => [k, { ...v }])),
    synrecv: new Map([...d.synrecv].map(([k, v]) => [k, { ...v }])),
  };
}

export function applyWrites(d: DynamicState, writes: readonly Write[]): void {
  for (const w of writes) {
    if (w.map === 'cursor') d.cursors.set(w.id, w.value);
    else if (w.map === 'counts') d.counts.set(w.index, { ...w.value });
    else if (w.map === 'synrecv') {
      if (w.value) d.synrecv.set(w.slot, { ...w.value });
      else d.synrecv.delete(w.slot);
    }
    else if (w.map === 'conns' || w.map === 'strays') {
      if (w.value) d[w.map].set(w.key, { ...w.value });
      else d[w.map].delete(w.key);
    } else d[w.map].set(w.key, { ...w.value });
  }
}
