/**
 * The map compiler: a validated DirectorConfig -> the contents of the data plane's maps
 * (service entries, realserver slots, lookup tables, runtime settings). Pure: MAC resolution is
 * a function the caller passes in, and slot numbers come from the previous allocation so that a
 * running director keeps its realserver indexes (and so its flows) across changes.
 */
import { encode, SVC_KEY, SVC, REAL, CFG, FWMARK_KEY, FWMARK_VAL, DEST } from '../abi/layout.js';
import { ABI, TIMEOUT_STATES } from '../abi/generated.js';
import { ConfigError } from '../model/config-error.js';
import {
  type DirectorConfig, type VirtualService, type Realserver, type TimeoutSettings, type LcScheduler, type ForwardingMethod, serviceId, realserverKey, isLcScheduler, tableSizeOf,
} from '../model/types.js';
import { parseAddress, familyOf, parseNetmask, fullPrefix, prefixMask } from '../model/address.js';
import { effectiveTimeouts } from '../model/timeouts.js';
import { buildTable, hashFieldsFor, REAL_NONE, LC_KIND, drawnSize } from '../sched/index.js';
import { compileMarks, markCovers, type MarkEntry } from '../model/fwmark.js';

/** Where each service and realserver lives in the maps; kept in the state snapshot. */
export interface Allocation {
  services: Record<string, number>; // serviceId -> svc id
  reals: Record<string, { index: number; gen: number }>; // "serviceId/rip" -> slot
  nextGen: number;
}

export function emptyAllocation(): Allocation {
  return { services: {}, reals: {}, nextGen: 1 };
}

/** Allocation key of a realserver: `serviceId/rip` (the snapshot's and the compiler's). */
export function realId(svc: Pick<VirtualService, 'protocol' | 'vip' | 'port'>, rs: Pick<Realserver, 'address'>): string {
  return realIdOf(serviceId(svc), rs);
}

/**
 * `realId` of a realserver of the service `sid`. The same string for the same realserver object
 * (a change at a thousand services looks every realserver up in several records: a string the
 * records' keys were matched with before is not hashed and matched again).
 */
export function realIdOf(sid: string, rs: Pick<Realserver, 'address'>): string {
  const m = realMemo.get(rs);
  if (m && m.sid === sid && m.address === rs.address) return m.id;
  const id = `${sid}/${realserverKey(rs)}`;
  realMemo.set(rs, { sid, address: rs.address, id });
  return id;
}
const realMemo = new WeakMap<object, { sid: string; address: string; id: string }>();

/** The service id and realserver key a `realId` is made of. */
export function splitRealId(id: string): { service: string; rip: string } {
  const cut = id.lastIndexOf('/');
  return { service: id.slice(0, cut), rip: id.slice(cut + 1) };
}

/** The lvs_services key of a service; a firewall-mark service's: the mark (network order) as
 *  its address, port 0, proto LVS_PROTO_FWMARK. */
export function serviceKey(s: Pick<VirtualService, 'protocol' | 'vip' | 'port' | 'fwmark'>): Buffer {
  if (s.fwmark) {
    const addr = new Uint8Array(16);
    Buffer.from(addr.buffer).writeUInt32BE(s.fwmark >>> 0, 0);
    return encode(SVC_KEY, { addr, port: 0, proto: ABI.LVS_PROTO_FWMARK, family: familyOf(s.vip) });
  }
  return encode(SVC_KEY, { addr: bytes16(s.vip), port: s.port, proto: s.protocol === 'tcp' ? 6 : 17, family: familyOf(s.vip) });
}

/** An lvs_fwmarks entry (key, value) of a compiled mark entry. */
export function encodeMarkEntry(e: MarkEntry): { key: Buffer; value: Buffer } {
  const n = ABI.LVS_FWMARK_RANGES;
  const lo = Buffer.alloc(2 * n);
  const hi = Buffer.alloc(2 * n);
  const mark = Buffer.alloc(4 * n);
  e.ranges.slice(0, n).forEach((r, i) => {
    lo.writeUInt16LE(r.from, 2 * i);
    hi.writeUInt16LE(r.to, 2 * i);
    mark.writeUInt32LE(r.mark >>> 0, 4 * i);
  });
  return {
    key: encode(FWMARK_KEY, { prefixlen: 16 + e.prefix.plen, family: e.family, proto: e.proto, addr: e.prefix.bytes }),
    value: encode(FWMARK_VAL, { lo, hi, mark, count: Math.min(e.ranges.length, n) }),
  };
}

/** The lvs_fwmarks entries of a configuration's marks (empty without marks). Throws on marks
 *  the data plane cannot hold (validateConfig reports the same with the file's location). */
export function compileMarkEntries(cfg: Pick<DirectorConfig, 'marks'>): { entries: MarkEntry[]; maps: { key: Buffer; value: Buffer }[] } {
  const { entries, problems } = compileMarks(cfg.marks ?? []);
  if (problems.length) throw new ConfigError(problems[0]!.message, { field: 'marks' });
  return { entries, maps: entries.map(encodeMarkEntry) };
}

export interface L2Next { mac: string; smac?: string; ifindex?: number }
/** Resolves the MAC to send to (DR: the realserver; Tun: its next hop) when the config has none. */
export type MacResolver = (svc: VirtualService, rs: Realserver) => L2Next | undefined;

export interface Limits { maxServices: number; maxReals: number; maxTableSize: number }

export interface CompiledReal {
  id: string; index: number; gen: number;
  readonly value: Buffer;
  /** Its lvs_dests value (weight, thresholds): what the least-connection family and thresholds read. */
  readonly dest: Buffer;
  /** Taken from the running state as it was recorded (see Reuse): `value` is `hex`, dest as written. */
  reused?: true;
  hex?: string;
}
export interface CompiledService {
  id: string;
  svcId: number;
  readonly key: Buffer;
  /** Taken from the running state (see Reuse): the digest recorded for its table and entry. */
  digest?: string;
  /** slot -> lvs_reals index (or LVS_REAL_NONE); built on first access. */
  readonly table: Uint32Array;
  /** What the table is a function of: equal fingerprints, equal tables. */
  readonly fingerprint: string;
  /** The lvs_services value once the table sits in `tableSlot` of lvs_tables. */
  value(tableSlot: number): Buffer;
  /** Lets the built table go (written to its map); a later access builds it again. */
  releaseTable(): void;
}
export interface CompiledDirector {
  services: CompiledService[];
  /** Every realserver slot, in the order of the services and their realservers. Those of a
   *  service taken whole from the running state (see Reuse.kept) are made when this is read. */
  readonly reals: CompiledReal[];
  /** The slots compiled anew (not taken from the running state), in the same order. */
  fresh?: CompiledReal[];
  /** How many realserver slots (reals.length, without making them). */
  realCount?: number;
  cfg: Buffer;
  allocation: Allocation;
  /** lvs_fwmarks entries (firewall-mark classification), in a stable order. */
  marks: { key: Buffer; value: Buffer }[];
}

/** Idle timeout per connection state, index = LVS_CS_* (lvs_cfg.timeout_s's order). */
export function timeoutsByState(settings?: TimeoutSettings): number[] {
  const t = effectiveTimeouts(settings);
  return TIMEOUT_STATES.map((k) => (k === null ? 0 : t[k]));
}

function bytes16(addr: string): Uint8Array {
  const p = parseAddress(addr);
  if (!p) throw new ConfigError(`bad address ${addr}`);
  const b = new Uint8Array(16);
  b.set(p.bytes);
  return b;
}

function macBytes(m: string): Uint8Array {
  return Uint8Array.from(m.split(':').map((h) => parseInt(h, 16)));
}

/** An lvs_reals value (struct lvs_real), from its fields. */
export interface RealFields {
  addr: string; mac: string; smac?: string; method: ForwardingMethod; quiesced?: boolean; gen: number; ifindex?: number; svcId: number;
  /** LVS-NAT only: the realserver's port (0 = the client's destination port), and the service
   *  (VIP, port; 0 = all ports) its replies are rewritten back to. */
  nat?: { port: number; vip: string; vport: number };
}
const METHOD_CODE: Readonly<Record<ForwardingMethod, number>> = { dr: ABI.LVS_FWD_DR, tun: ABI.LVS_FWD_TUN, nat: ABI.LVS_FWD_NAT };
export function encodeReal(f: RealFields): Buffer {
  return encode(REAL, {
    addr: bytes16(f.addr), mac: macBytes(f.mac), smac: f.smac ? macBytes(f.smac) : new Uint8Array(6),
    family: familyOf(f.addr), method: METHOD_CODE[f.method],
    flags: ABI.LVS_REAL_F_ACTIVE | (f.quiesced ? ABI.LVS_REAL_F_QUIESCED : 0),
    gen: f.gen, ifindex: f.ifindex ?? 0, svc_id: f.svcId,
    ...(f.method === 'nat' && f.nat ? { port: f.nat.port, vport: f.nat.vport, vip: bytes16(f.nat.vip) } : {}),
  });
}

/** An lvs_dests value (struct lvs_dest): ipvsadm -w, -x, -y. */
export function encodeDest(r: Pick<Realserver, 'weight' | 'upperThreshold' | 'lowerThreshold'>): Buffer {
  return encode(DEST, { weight: r.weight, u_thresh: r.upperThreshold ?? 0, l_thresh: r.lowerThreshold ?? 0 });
}

/** An lvs_services value (struct lvs_svc): the service entry once its table is in `tableSlot`. */
export interface ServiceFields {
  svcId: number; tableSlot: number; tableSize: number; persistTimeout?: number;
  /** 16 bytes: the client address mask of persistence templates (IPv4 in the first 4). */
  persistMask: Uint8Array; flags: number; hashFields: number;
  /** A firewall-mark service's mark (connection sync reports it); absent: a port service. */
  fwmark?: number;
}
export function encodeService(f: ServiceFields): Buffer {
  return encode(SVC, {
    id: f.svcId, table_slot: f.tableSlot, table_size: f.tableSize, persist_timeout: f.persistTimeout ?? 0,
    persist_mask: f.persistMask, flags: f.flags, hash_fields: f.hashFields, fwmark: f.fwmark ?? 0,
  });
}

/** The lvs_cfg value (struct lvs_cfg): runtime settings. Timeouts in seconds, unset ones default. */
export interface SettingsFields {
  tunSrc4?: string; tunSrc6?: string; hashSeed?: number; timeouts?: TimeoutSettings; tunMtu?: number; tunTtl?: number; flags?: number;
  /** Connection sync's refresh period, seconds (lvs_cfg.sync_refresh_s; src/director/plan.ts withSync). */
  syncRefreshS?: number;
}
export function encodeSettings(f: SettingsFields): Buffer {
  const timeouts = Buffer.alloc(24);
  timeoutsByState(f.timeouts).forEach((v, i) => timeouts.writeUInt32LE(v, i * 4));
  return encode(CFG, {
    tun_src4: f.tunSrc4 ? bytes16(f.tunSrc4).subarray(0, 4) : new Uint8Array(4),
    tun_src6: f.tunSrc6 ? bytes16(f.tunSrc6) : new Uint8Array(16),
    hash_seed: f.hashSeed ?? 0, timeout_s: timeouts, tun_mtu: f.tunMtu ?? 1500, tun_ttl: f.tunTtl ?? 64, flags: f.flags ?? 0,
    sync_refresh_s: f.syncRefreshS ?? 0,
  });
}

/** A table of realserver positions, rewritten in place to lvs_reals indexes (one allocation per
 *  table: a restore of a thousand services makes no second copy of each). */
function toRealIndexes(t: Uint32Array, indexes: readonly number[]): Uint32Array {
  for (let i = 0; i < t.length; i++) t[i] = t[i] === REAL_NONE ? ABI.LVS_REAL_NONE : indexes[t[i]!]!;
  return t;
}

/** Lowest number not in `used`. */
function lowestFree(used: Set<number>): number {
  let i = 0;
  while (used.has(i)) i++;
  return i;
}

const FIELD_BITS = { saddr: ABI.LVS_HF_SADDR, sport: ABI.LVS_HF_SPORT, daddr: ABI.LVS_HF_DADDR, dport: ABI.LVS_HF_DPORT, proto: ABI.LVS_HF_PROTO } as const;

/** What a compile asks of a set of ids (built only when it asks: most changes take no new id). */
export interface IdSet { has(id: number): boolean }

/**
 * Ids not to hand to new services / realservers in this compile although no longer in use:
 * what a running director frees in the same change stays referenced (by the old tables, until
 * they are switched), so new things take other ids while there are any. Ghosts (id -> deletion
 * time) are the ids of deleted services and realservers whose connection entries may still
 * live: kept for their own service or realserver, taken by others only when nothing else is
 * free, the longest-deleted first.
 */
export interface Reserved {
  services?: IdSet;
  reals?: IdSet;
  ghostServices?: ReadonlyMap<number, number>;
  ghostReals?: ReadonlyMap<number, number>;
}

/** Hands out ids below `max`: the lowest one neither used, reserved nor a ghost's; when there is
 *  none, the oldest ghost's; then the lowest unused one (reserved or not). */
class IdAllocator {
  private next = 0;
  /** `complete`: adds to `used` what it leaves out (the ids of what a compile took whole, which
   *  `reserved` holds): needed only when every id is taken. */
  constructor(
    private readonly used: Set<number>, private readonly reserved: IdSet = new Set(),
    private readonly ghosts: ReadonlyMap<number, number> = new Map(), private readonly max: number,
    private complete?: () => void,
  ) {}

  take(): number {
    // `used` only grows during a compile: the lowest free id never moves back.
    while (this.next < this.max && (this.used.has(this.next) || this.reserved.has(this.next) || this.ghosts.has(this.next))) this.next++;
    let id = this.next;
    if (id >= this.max) {
      this.complete?.();
      this.complete = undefined;
      let at = Infinity;
      id = -1;
      for (const [g, when] of this.ghosts) if (!this.used.has(g) && !this.reserved.has(g) && when < at) { id = g; at = when; }
      if (id < 0) id = lowestFree(this.used);
    }
    this.used.add(id);
    return id;
  }
}

/**
 * What the running director was compiled from and into (src/director/plan.ts compileTarget): a
 * service of the new configuration that is the very object the running one was compiled from
 * (validation and ipvsadm-style changes keep the objects of the services they leave alone), with
 * the same ids, slots and next hops, compiles to the bytes recorded then. Its entries are taken
 * from there instead of being encoded again: a one-realserver change at a thousand services
 * encodes one service. `reals`, `digests` and `l2` are the applied state's.
 */
export interface Reuse {
  services: ReadonlySet<VirtualService>;
  /**
   * Running services (the same objects) whose realservers all keep the next hop the running
   * state recorded (src/director/transaction.ts: nothing was resolved for them): taken whole
   * when their service id and digest are recorded, without looking at each realserver (their
   * slots are the running allocation's, their values the recorded ones, by construction of a
   * state this compiler recorded). A one-realserver change at a thousand services looks at one.
   */
  kept?: ReadonlySet<VirtualService>;
  /** The next hops of this compile, by realserver id (what `resolve` answers). */
  hops: ReadonlyMap<string, L2Next>;
  allocation: Allocation;
  reals: Readonly<Record<string, string>>;
  digests: Readonly<Record<string, string>>;
  l2: Readonly<Record<string, L2Next>>;
}

/** Ties a compile's output to this compiler: entries recorded by another one are not reused.
 *  Bump it with any change to what a service or realserver compiles to (encodings, digests,
 *  table sizes) that the package version or ABI version does not already mark. */
export const COMPILER_EPOCH = 1;

/**
 * A service's lvs_services entry and table, each built on first use. `digest`: the digest
 * recorded when this same service was compiled into the running state (reused, see Reuse):
 * nothing of it is encoded unless asked for.
 */
class ServiceEntry implements CompiledService {
  private built: Uint32Array | undefined;
  private k: Buffer | undefined;
  private fp: string | undefined;
  private f: { flags: number; hashFields: number; mask: Uint8Array; lc: boolean } | undefined;
  constructor(
    private readonly s: VirtualService, readonly id: string, readonly svcId: number, private readonly slots: readonly number[] | (() => readonly number[]), private readonly size: number,
    private readonly marks: readonly MarkEntry[], private readonly markServices: ReadonlySet<number>, readonly digest?: string,
  ) {}

  /** The realservers' lvs_reals indexes (of a service taken whole, looked up when first asked). */
  private get indexes(): readonly number[] {
    const x = this.slots;
    return typeof x === 'function' ? x() : x;
  }

  get key(): Buffer {
    return (this.k ??= serviceKey(this.s));
  }

  // Everything the table is a function of (tables are deterministic).
  // fo / ovf tables keep list order among equal weights: the order is part of them.
  get fingerprint(): string {
    const s = this.s;
    const order = s.scheduler === 'fo' || s.scheduler === 'ovf' ? s.realservers.map((r) => r.address) : [];
    return (this.fp ??= JSON.stringify([s.scheduler, this.size, s.realservers.map((r, i) => [r.address, r.weight, this.indexes[i]]).sort(), order]));
  }

  // Built on first use: a change to one service of a thousand builds one table.
  get table(): Uint32Array {
    return (this.built ??= toRealIndexes(buildTable(this.s), this.indexes));
  }

  releaseTable(): void {
    this.built = undefined;
  }

  fields(): { flags: number; hashFields: number; mask: Uint8Array; lc: boolean } {
    if (this.f) return this.f;
    const s = this.s;
    let hashFields = 0;
    let flags = 0;
    for (const f of hashFieldsFor(s)) {
      if (f === 'rotate') flags |= ABI.LVS_SVC_F_ROTATE;
      else if (f !== 'candidates') hashFields |= FIELD_BITS[f];
    }
    const lc = isLcScheduler(s.scheduler);
    if (lc) flags |= ABI.LVS_SVC_F_LC | (LC_KIND[s.scheduler as keyof typeof LC_KIND] << ABI.LVS_SVC_LC_SHIFT);
    if (s.realservers.some((r) => (r.upperThreshold ?? 0) > 0)) flags |= ABI.LVS_SVC_F_THRESH;
    if (s.ops) flags |= ABI.LVS_SVC_F_OPS;
    if (markCovers(this.marks, this.markServices, s)) flags |= ABI.LVS_SVC_F_MARKED;
    if (!s.fwmark && s.port === 0) flags |= ABI.LVS_SVC_F_ALLPORTS; // sync: its templates have vport 0
    const fam = familyOf(s.vip);
    let mask = prefixMask(fullPrefix(fam) + (fam === 4 ? 96 : 0));
    if (s.persistence) {
      flags |= ABI.LVS_SVC_F_PERSIST;
      const plen = parseNetmask(s.persistence.netmask, fam);
      if (typeof plen === 'string') throw new ConfigError(`${this.id}: persistence netmask: ${plen}`, { field: 'netmask' });
      mask = prefixMask(plen);
    }
    return (this.f = { flags, hashFields, mask, lc });
  }

  value(tableSlot: number): Buffer {
    const s = this.s;
    const { flags, hashFields, mask, lc } = this.fields();
    return encodeService({
      svcId: this.svcId, tableSlot, tableSize: s.scheduler === 'rr' || s.scheduler === 'wrr' ? this.table.length
        : lc ? drawnSize(s.scheduler as LcScheduler, this.table, s.realservers.map((r) => ({ key: r.address, weight: r.weight }))) : this.size,
      persistTimeout: s.persistence?.timeout ?? 0, persistMask: mask, flags, hashFields, ...(s.fwmark ? { fwmark: s.fwmark } : {}),
    });
  }
}

/** A realserver slot as the running state recorded it (see Reuse): decoded only when asked. */
class ReusedReal implements CompiledReal {
  readonly reused = true as const;
  readonly index: number;
  readonly gen: number;
  private v: Buffer | undefined;
  private d: Buffer | undefined;
  constructor(readonly id: string, a: { index: number; gen: number }, readonly hex: string, private readonly rs: Realserver) {
    this.index = a.index;
    this.gen = a.gen;
  }

  get value(): Buffer {
    return (this.v ??= Buffer.from(this.hex, 'hex'));
  }

  get dest(): Buffer {
    return (this.d ??= encodeDest(this.rs));
  }
}

function sameL2(a: L2Next | undefined, b: L2Next | undefined): boolean {
  if (a === b) return true;
  return !!a && !!b && a.mac === b.mac && a.smac === b.smac && a.ifindex === b.ifindex;
}

export function compileDirector(
  cfg: DirectorConfig, resolve: MacResolver, limits: Limits, prev: Allocation = emptyAllocation(), reserved: Reserved = {}, reuse?: Reuse,
): CompiledDirector {
  // Maps while compiling (a thousand services' lookups); the allocation record is made when asked
  // for (a change that keeps every slot uses the running one, src/director/plan.ts).
  const alloc = { services: new Map<string, number>(), reals: new Map<string, { index: number; gen: number }>(), nextGen: prev.nextGen };
  if (cfg.services.length > limits.maxServices) {
    throw new ConfigError(`${cfg.services.length} services, the director was loaded for at most ${limits.maxServices}`, { hint: 'reload with a larger --max-services' });
  }
  const totalReals = cfg.services.reduce((n, s) => n + s.realservers.length, 0);
  if (totalReals > limits.maxReals) {
    throw new ConfigError(`${totalReals} realservers in all, the director was loaded for at most ${limits.maxReals}`, { hint: 'reload with a larger --max-reals' });
  }

  // Keep the ids of what still exists; new things take the lowest free ids.
  // (Service ids computed once per service: every realserver's id starts with its service's.)
  const sids = cfg.services.map(serviceId);
  const usedSvc = new Set<number>();
  for (const id of sids) {
    const old = prev.services[id];
    if (old !== undefined) { alloc.services.set(id, old); usedSvc.add(old); }
  }
  // Running services whose every realserver keeps its recorded slot, value and next hop (see
  // Reuse.kept): nothing of their realservers is looked at unless asked for.
  const whole = cfg.services.map((s, k) => {
    const r = reuse;
    if (!r?.kept?.has(s) || !r.services.has(s)) return false;
    const sid = sids[k]!;
    return r.digests[sid] !== undefined && prev.services[sid] !== undefined && prev.services[sid] === r.allocation.services[sid];
  });
  const usedReal = new Set<number>();
  const ridsOf = cfg.services.map((s, k) => (whole[k] ? [] : s.realservers.map((r) => {
    const rid = realIdOf(sids[k]!, r);
    const old = prev.reals[rid];
    if (old) { alloc.reals.set(rid, old); usedReal.add(old.index); }
    return rid;
  })));
  /** The slots of a service taken whole: the running allocation's. */
  const wholeSlots = (k: number): { rid: string; a: { index: number; gen: number } }[] => {
    const sid = sids[k]!;
    return cfg.services[k]!.realservers.map((r) => {
      const rid = realIdOf(sid, r);
      return { rid, a: prev.reals[rid]! };
    });
  };
  /** Slots handed out in this compile, in order. */
  const allocated: [string, { index: number; gen: number }][] = [];

  // Firewall marks: port services a mark with a service covers are classified first (IPVS order).
  const marks = compileMarkEntries(cfg);
  const markServices = new Set(cfg.services.filter((s) => s.fwmark).map((s) => s.fwmark!));
  const compileService = (s: VirtualService, sid: string, svcId: number, indexes: readonly number[] | (() => readonly number[]), digest?: string): CompiledService => {
    // The size is known without building the table (rr / wrr sequences are at most this long;
    // Maglev's default follows the number of realservers).
    const size = tableSizeOf(s);
    if (size > limits.maxTableSize) {
      throw new ConfigError(`${sid}: table of ${size} slots, the director allows at most ${limits.maxTableSize}`, { field: 'table-size' });
    }
    const entry = new ServiceEntry(s, sid, svcId, indexes, size, marks.entries, markServices, digest);
    // A service compiled anew says what is wrong with it now, not when first written.
    if (digest === undefined) entry.fields();
    return entry;
  };
  const svcIds = new IdAllocator(usedSvc, reserved.services, reserved.ghostServices, limits.maxServices);
  const realIds = new IdAllocator(usedReal, reserved.reals, reserved.ghostReals, limits.maxReals, () => {
    for (const [k, w] of whole.entries()) if (w) for (const x of wholeSlots(k)) usedReal.add(x.a.index);
  });
  const services: CompiledService[] = [];
  /** Per service, its realserver slots (or, taken whole, how to make them). */
  const realsBy: (CompiledReal[] | (() => CompiledReal[]))[] = [];
  const fresh: CompiledReal[] = [];
  let reals: CompiledReal[] = [];
  /** A service compiled into the running state as it is: its entries as recorded (see Reuse). */
  const reused = (s: VirtualService, sid: string, svcId: number, rids: readonly string[]): boolean => {
    const r = reuse!;
    const digest = r.digests[sid];
    if (!r.services.has(s) || r.allocation.services[sid] !== svcId || digest === undefined) return false;
    const hexes: string[] = [];
    const indexes: number[] = [];
    for (const [i, rid] of rids.entries()) {
      const a = alloc.reals.get(rid);
      const hex = r.reals[rid];
      const l2 = r.l2[rid];
      // Unresolved when it was compiled (no next hop recorded): it was compiled at weight 0.
      if (!a || a !== r.allocation.reals[rid] || hex === undefined || !l2) return false;
      // (With a MAC given, the next hop recorded is that MAC: the same when it is.)
      if (!sameL2(r.hops.get(rid), l2)) return false;
      hexes.push(hex);
      indexes.push(a.index);
    }
    for (const [i, rid] of rids.entries()) reals.push(new ReusedReal(rid, alloc.reals.get(rid)!, hexes[i]!, s.realservers[i]!));
    services.push(compileService(s, sid, svcId, indexes, digest));
    return true;
  };
  for (const [k, s] of cfg.services.entries()) {
    const sid = sids[k]!;
    if (!alloc.services.has(sid)) alloc.services.set(sid, svcIds.take());
    const svcId = alloc.services.get(sid)!;
    reals = [];
    realsBy.push(reals);
    if (whole[k]) {
      const r = reuse!;
      realsBy[k] = () => wholeSlots(k).map(({ rid, a }, i) => new ReusedReal(rid, a, r.reals[rid]!, s.realservers[i]!));
      services.push(compileService(s, sid, svcId, () => wholeSlots(k).map((x) => x.a.index), r.digests[sid]));
      continue;
    }
    if (reuse && reused(s, sid, svcId, ridsOf[k]!)) continue;
    const indexes: number[] = [];
    for (const [j, r] of s.realservers.entries()) {
      const rid = ridsOf[k]![j]!;
      if (!alloc.reals.has(rid)) {
        const a = { index: realIds.take(), gen: alloc.nextGen++ };
        alloc.reals.set(rid, a);
        allocated.push([rid, a]);
      }
      const { index, gen } = alloc.reals.get(rid)!;
      indexes.push(index);
      const l2 = r.mac ? { mac: r.mac } : resolve(s, r);
      if (!l2) {
        throw new ConfigError(`${sid}: realserver ${r.address}: no MAC address for ${r.method === 'dr' ? 'the realserver' : 'its next hop'}`, {
          field: 'mac', hint: 'give --mac, or make sure the director can reach it (ip neigh)',
        });
      }
      const compiled: CompiledReal = {
        id: rid, index, gen, dest: encodeDest(r),
        value: encodeReal({
          addr: r.address, mac: l2.mac, ...(l2.smac ? { smac: l2.smac } : {}), method: r.method, quiesced: r.weight === 0,
          gen, ...(l2.ifindex ? { ifindex: l2.ifindex } : {}), svcId,
          ...(r.method === 'nat' ? { nat: { port: r.port, vip: s.vip, vport: s.port } } : {}),
        }),
      };
      reals.push(compiled);
      fresh.push(compiled);
    }
    services.push(compileService(s, sid, svcId, indexes));
  }

  const st = cfg.settings ?? {};
  const cfgBuf = encodeSettings({
    ...(st.tunnel?.source4 ? { tunSrc4: st.tunnel.source4 } : {}), ...(st.tunnel?.source6 ? { tunSrc6: st.tunnel.source6 } : {}),
    hashSeed: st.hashSeed ?? 0, ...(st.timeouts ? { timeouts: st.timeouts } : {}), tunMtu: st.tunnel?.mtu ?? 1500, tunTtl: st.tunnel?.ttl ?? 64,
    flags: (st.expireQuiescentTemplate ? ABI.LVS_CFG_F_EXPIRE_QUIESCENT : 0) | (marks.maps.length ? ABI.LVS_CFG_F_FWMARK : 0) |
      (cfg.services.some((s) => s.realservers.some((r) => r.method === 'nat')) ? ABI.LVS_CFG_F_NAT : 0),
  });
  let svcRecord: Allocation['services'] | undefined;
  let realRecord: Allocation['reals'] | undefined;
  // The record in the order of a compile that took nothing whole: the slots kept, in the order
  // of the services and their realservers, then those handed out here.
  const realsRecord = (): Allocation['reals'] => {
    if (!whole.includes(true)) return Object.fromEntries(alloc.reals);
    const out: Allocation['reals'] = {};
    for (const [k, s] of cfg.services.entries()) {
      if (whole[k]) {
        for (const { rid, a } of wholeSlots(k)) out[rid] = a;
        continue;
      }
      for (const [j] of s.realservers.entries()) {
        const rid = ridsOf[k]![j]!;
        const old = prev.reals[rid];
        if (old && alloc.reals.get(rid) === old) out[rid] = old;
      }
    }
    for (const [rid, a] of allocated) out[rid] = a;
    return out;
  };
  const allocation: Allocation = {
    get services() { return (svcRecord ??= Object.fromEntries(alloc.services)); },
    get reals() { return (realRecord ??= realsRecord()); },
    nextGen: alloc.nextGen,
  };
  let all: CompiledReal[] | undefined;
  return {
    services, fresh, realCount: totalReals, cfg: cfgBuf, allocation, marks: marks.maps,
    get reals() { return (all ??= realsBy.flatMap((x) => (typeof x === 'function' ? x() : x))); },
  };
}
