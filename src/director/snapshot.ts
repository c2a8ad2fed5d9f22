/**
 * The snapshot: what the pinned maps cannot say by themselves (the configuration as the operator
 * wrote it, slot allocation, resolved MACs, load-time sizes), msgpackr-encoded with a format tag
 * and version so that a corrupt or foreign file is a clear error. Written atomically (rename),
 * mode 0600 in a 0700 directory. An apply in progress is recorded as `pending`, so that a
 * process killed half-way leaves a record the next call can finish from.
 */
import { mkdirSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import { Packr } from 'msgpackr';
import { writeFileAtomicSync } from './atomic.js';
import { StateError, translateNativeError } from '../errors.js';
import type { DirectorConfig } from '../model/types.js';
import type { Allocation, L2Next } from '../dataplane/compile.js';
import type { DirectorSizes, Knobs } from '../dataplane/loader.js';
import type { Step, SyncSetting } from './plan.js';
import type { PendingUpgrade, UpgradeRecord } from './upgrade.js';

export const SNAPSHOT_FORMAT = 'lvs-xdp-state';
/**
 * 2: `applied.tableSlots`; `pending` holds the plan (target and steps) instead of the target
 * alone. 3 (issue 12): `applied.ghosts` (deleted services and realservers whose connections may
 * live), `applied.unresolved` (realservers installed without a next hop), `applied.drains`.
 * 5 (issue 14): `applied.sync` (connection sync events on / refresh period).
 * Older snapshots are read and migrated (see migrate()).
 */
export const SNAPSHOT_VERSION = 5;

/** A realserver installed without a next hop (it does not answer ARP/ND): no table slots until it does. */
export interface UnresolvedReal {
  /** Why, as the last resolution said. */
  problem: string;
  /** When it was first found unresolved (ISO time). */
  since: string;
}

/**
 * A manual drain (`lvs-xdp drain`, `-e -w 0`): the realserver (or every realserver of the
 * service) runs at weight 0 until `undrain` gives back the weights it had.
 */
export interface Drain {
  service: string;
  /** Absent: the whole service. */
  realserver?: string;
  since: string;
  /** rip -> the weight before the drain (what undrain restores). */
  weights: Record<string, number>;
}

export interface AppliedState {
  config: DirectorConfig;
  allocation: Allocation;
  /** "serviceId/rip" -> L2 next hop in use (resolved or given), so a re-apply does not re-probe. */
  l2: Record<string, L2Next>;
  /** serviceId -> digest of its table and service entry as written. */
  digests: Record<string, string>;
  /** "serviceId/rip" -> hex of the lvs_reals value as written. */
  reals: Record<string, string>;
  /** serviceId -> the lvs_tables slot its entry points at (the other one of its two is spare).
   *  Absent in a migrated version 1 snapshot until the director reads it from the maps. */
  tableSlots?: Record<string, number>;
  /** Tun outer sources in effect (configured, or from the routing table when applied). */
  tunnel?: { source4?: string; source6?: string };
  /** Hex of the lvs_cfg value as written (VIP filter on): a change that leaves it alone does not
   *  write it. Absent (older snapshots, a fresh attach): the next plan writes it. Optional, so
   *  no version bump. */
  settings?: string;
  /** "serviceId/rip" -> realservers installed unresolved (version 3). They have no entry in `l2`. */
  unresolved?: Record<string, UnresolvedReal>;
  /** Manual drains in force, by "serviceId/rip" (a realserver) or serviceId (a service) (version 3). */
  drains?: Record<string, Drain>;
  /** Deleted services and realservers whose connection entries may still live (absent: none). */
  ghosts?: Ghosts;
  /** Connection sync events in the data plane (version 5; absent: off). */
  sync?: SyncSetting;
  /** The compiler `digests` and `reals` were recorded by (src/director/plan.ts COMPILER): a
   *  change takes the entries of the services it leaves alone from here only when it is this
   *  one. Absent (older snapshots): every service is compiled again. Optional, so no version bump. */
  compiler?: string;
  /** Services whose spare lvs_tables slot may still hold a previous table (switched by the last
   *  change that filled tables): the next fill batch points them at their live one. Absent
   *  (older snapshots): every service's may. Optional, so no version bump. */
  staleSpares?: string[];
}

/**
 * What a deletion leaves in the maps until the longest timeout has passed (src/director/plan.ts):
 * a service's tombstone (its lvs_services entry flagged LVS_SVC_F_GONE, its id and VIP filter
 * bits kept) and a realserver's slot flagged LVS_REAL_F_GONE (index, generation and forwarding
 * data kept). The same service or realserver added again gets them back and its connections
 * resume. Times are milliseconds since the epoch.
 */
export interface Ghosts {
  /** serviceId -> tombstone. */
  services: Record<string, { svcId: number; key: string; deletedAt: number }>;
  /** "serviceId/rip" -> deleted slot: the lvs_reals value as written (hex, LVS_REAL_F_GONE). */
  reals: Record<string, { index: number; gen: number; value: string; deletedAt: number }>;
}

/** An apply in progress: its target and steps; `<state dir>/apply.journal` counts the steps written. */
export interface PendingPlan {
  target: AppliedState;
  /** Absent when migrated from version 1 (which recorded the target only): replay all. */
  steps?: Step[];
  startedAt: string;
}

export interface InterfaceState {
  ifindex: number;
  mode: string;
  attachedAt: string;
  /** Why an `auto` attach runs in generic mode (the native attempt's refusal). */
  genericBecause?: string;
  /** 'chain': shared by tail calls (src/director/chain.ts; lvs_root runs there, the director in
   *  its slot). Absent: attached alone. Optional, so no version bump. */
  sharing?: 'chain';
}

export interface Snapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  tool: string;
  createdAt: string;
  updatedAt: string;
  sizes: DirectorSizes;
  knobs: Knobs;
  progId: number;
  interfaces: Record<string, InterfaceState>;
  applied: AppliedState;
  /** Set while an apply runs; cleared when it has been written completely. */
  pending?: PendingPlan;
  /** The running program's data plane ABI version (absent in snapshots of lvs-xdp before
   *  upgrades in place: then it is read from the program). Optional, so no version bump. */
  abiVersion?: number;
  /** An upgrade staged and recorded, not yet completed (`lvs-xdp upgrade` completes it). */
  upgrade?: PendingUpgrade;
  /** Upgrades done in place, oldest first (src/director/upgrade.ts). */
  upgrades?: UpgradeRecord[];
}

const packr = new Packr({ useRecords: false, variableMapSize: true });

/**
 * The bytes of the applied state's large records (each service of its configuration, the
 * allocation's records, next hops, values, digests, table slots), by object: packed once, or
 * as read from the file. A change builds a target that keeps the records it leaves alone (the
 * same objects, src/director/plan.ts), so writing it packs what changed and copies the rest.
 * These objects are never modified once in an applied state.
 */
const packed = new WeakMap<object, Buffer>();

function cached(v: object): Buffer {
  let b = packed.get(v);
  if (!b) {
    b = Buffer.from(packr.pack(v));
    packed.set(v, b);
  }
  return b;
}

function mapHead(n: number): Buffer {
  return n < 16 ? Buffer.from([0x80 | n])
    : n < 0x10000 ? Buffer.from([0xde, n >> 8, n & 0xff])
      : Buffer.from([0xdf, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

function arrayHead(n: number): Buffer {
  return n < 16 ? Buffer.from([0x90 | n])
    : n < 0x10000 ? Buffer.from([0xdc, n >> 8, n & 0xff])
      : Buffer.from([0xdd, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/** A msgpack map of `o`'s own keys, each value packed by `each` (a plain msgpack map either way). */
function packMap(o: Record<string, unknown>, parts: Buffer[], each: (k: string, v: unknown, parts: Buffer[]) => void): void {
  const keys = Object.keys(o);
  parts.push(mapHead(keys.length));
  for (const k of keys) {
    parts.push(Buffer.from(packr.pack(k)));
    each(k, o[k], parts);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
const RECORDS = new Set(['l2', 'reals', 'digests', 'tableSlots']);

function packApplied(a: AppliedState, parts: Buffer[]): void {
  packMap(a as unknown as Record<string, unknown>, parts, (k, v, out) => {
    if (k === 'config' && isObject(v) && Array.isArray(v.services)) {
      packMap(v, out, (ck, cv, o2) => {
        if (ck !== 'services') return void o2.push(Buffer.from(packr.pack(cv)));
        const list = cv as object[];
        o2.push(arrayHead(list.length));
        for (const svc of list) o2.push(cached(svc));
      });
    } else if (k === 'allocation' && isObject(v)) {
      packMap(v, out, (ak, av, o2) => void o2.push(isObject(av) ? cached(av) : Buffer.from(packr.pack(av))));
    } else if (RECORDS.has(k) && isObject(v)) {
      out.push(cached(v));
    } else {
      out.push(Buffer.from(packr.pack(v)));
    }
  });
}

/**
 * The snapshot as a msgpack map (the same bytes msgpack gives it whole): the applied state's and
 * the pending target's large records spliced from their bytes when packed or read before.
 * `encoded`: values already packed, by identity, spliced in as they are.
 */
export function encodeSnapshot(s: Snapshot, encoded?: ReadonlyMap<object, Buffer>): Buffer {
  const parts: Buffer[] = [];
  const value = (v: unknown, applied: boolean, out: Buffer[]) => {
    const done = v !== null && typeof v === 'object' ? encoded?.get(v) : undefined;
    if (done) out.push(done);
    else if (applied && isObject(v)) packApplied(v as unknown as AppliedState, out);
    else out.push(Buffer.from(packr.pack(v)));
  };
  packMap(s as unknown as Record<string, unknown>, parts, (k, v, out) => {
    if (k === 'pending' && isObject(v)) packMap(v, out, (pk, pv, o2) => value(pv, pk === 'target', o2));
    else value(v, k === 'applied', out);
  });
  return Buffer.concat(parts);
}

/** Packs an applied state once, for encodeSnapshot's `encoded` (its records' bytes are kept). */
export function packOnce(value: AppliedState): Buffer {
  const parts: Buffer[] = [];
  packApplied(value, parts);
  return Buffer.concat(parts);
}

/** Decodes and checks the tag and version; `where` names the file in errors. */
export function decodeSnapshot(buf: Buffer, where: string): Snapshot {
  let v: unknown;
  try {
    v = packr.unpack(buf);
  } catch (e) {
    throw new StateError(`state snapshot ${where} is corrupt (${e instanceof Error ? e.message : String(e)})`, {
      hint: 'the data plane keeps forwarding with what is in its maps; `lvs-xdp detach` then attach again rebuilds the state',
    });
  }
  const o = v as Partial<Snapshot> | null;
  if (!o || typeof o !== 'object' || o.format !== SNAPSHOT_FORMAT) {
    throw new StateError(`${where} is not an lvs-xdp state snapshot`, { hint: 'check --pin-dir / --state-dir (or LVS_XDP_PIN_DIR / LVS_XDP_STATE_DIR)' });
  }
  if (typeof o.version !== 'number' || o.version > SNAPSHOT_VERSION) {
    throw new StateError(`state snapshot ${where} has version ${String(o.version)}, this lvs-xdp reads up to ${SNAPSHOT_VERSION}`, {
      hint: `it was written by lvs-xdp ${String(o.tool)}; use that version or newer`,
    });
  }
  if (!o.applied || !o.interfaces || !o.sizes) throw new StateError(`state snapshot ${where} is incomplete`);
  rememberBytes(buf, o as Snapshot);
  return migrate(o as Snapshot);
}

/**
 * Where each value of a msgpack item ends (`b[p]` starts it): the structure is walked, nothing is
 * decoded. Throws RangeError past the end.
 */
function skip(b: Buffer, p: number): number {
  const t = b[p]!;
  if (t === undefined) throw new RangeError('truncated');
  if (t < 0x80 || t >= 0xe0 || t === 0xc0 || t === 0xc1 || t === 0xc2 || t === 0xc3) return p + 1;
  if (t <= 0x8f) return skipItems(b, p + 1, 2 * (t & 0x0f));
  if (t <= 0x9f) return skipItems(b, p + 1, t & 0x0f);
  if (t <= 0xbf) return p + 1 + (t & 0x1f);
  switch (t) {
    case 0xc4: case 0xd9: return p + 2 + b[p + 1]!;
    case 0xc5: case 0xda: return p + 3 + b.readUInt16BE(p + 1);
    case 0xc6: case 0xdb: return p + 5 + b.readUInt32BE(p + 1);
    case 0xc7: return p + 3 + b[p + 1]!;
    case 0xc8: return p + 4 + b.readUInt16BE(p + 1);
    case 0xc9: return p + 6 + b.readUInt32BE(p + 1);
    case 0xca: return p + 5;
    case 0xcb: return p + 9;
    case 0xcc: case 0xd0: return p + 2;
    case 0xcd: case 0xd1: return p + 3;
    case 0xce: case 0xd2: return p + 5;
    case 0xcf: case 0xd3: return p + 9;
    case 0xd4: return p + 3;
    case 0xd5: return p + 4;
    case 0xd6: return p + 6;
    case 0xd7: return p + 10;
    case 0xd8: return p + 18;
    case 0xdc: return skipItems(b, p + 3, b.readUInt16BE(p + 1));
    case 0xdd: return skipItems(b, p + 5, b.readUInt32BE(p + 1));
    case 0xde: return skipItems(b, p + 3, 2 * b.readUInt16BE(p + 1));
    case 0xdf: return skipItems(b, p + 5, 2 * b.readUInt32BE(p + 1));
    default: throw new RangeError(`msgpack type 0x${t.toString(16)}`);
  }
}

function skipItems(b: Buffer, p: number, n: number): number {
  for (let i = 0; i < n; i++) p = skip(b, p);
  return p;
}

/** A map's or array's entry count and where its first entry starts; undefined for other types. */
function container(b: Buffer, p: number): { map: boolean; n: number; at: number } | undefined {
  const t = b[p]!;
  if (t >= 0x80 && t <= 0x8f) return { map: true, n: t & 0x0f, at: p + 1 };
  if (t >= 0x90 && t <= 0x9f) return { map: false, n: t & 0x0f, at: p + 1 };
  if (t === 0xde) return { map: true, n: b.readUInt16BE(p + 1), at: p + 3 };
  if (t === 0xdf) return { map: true, n: b.readUInt32BE(p + 1), at: p + 5 };
  if (t === 0xdc) return { map: false, n: b.readUInt16BE(p + 1), at: p + 3 };
  if (t === 0xdd) return { map: false, n: b.readUInt32BE(p + 1), at: p + 5 };
  return undefined;
}

/** A string key at `p` (undefined when it is not a string) and where its value starts. */
function keyAt(b: Buffer, p: number): { key: string | undefined; at: number } {
  const t = b[p]!;
  const end = skip(b, p);
  if (t >= 0xa0 && t <= 0xbf) return { key: b.toString('utf8', p + 1, end), at: end };
  if (t === 0xd9) return { key: b.toString('utf8', p + 2, end), at: end };
  if (t === 0xda) return { key: b.toString('utf8', p + 3, end), at: end };
  if (t === 0xdb) return { key: b.toString('utf8', p + 5, end), at: end };
  return { key: undefined, at: end };
}

/** The entries of the map at `p`: key -> [start, end) of its value. */
function entriesAt(b: Buffer, p: number): Map<string, [number, number]> | undefined {
  const c = container(b, p);
  if (!c?.map) return undefined;
  const out = new Map<string, [number, number]>();
  let at = c.at;
  for (let i = 0; i < c.n; i++) {
    const k = keyAt(b, at);
    const end = skip(b, k.at);
    if (k.key !== undefined) out.set(k.key, [k.at, end]);
    at = end;
  }
  return out;
}

/**
 * The bytes each large record of the applied state was read from (see `packed`): the next write
 * copies the records a change left alone instead of packing them again. Only where the file is
 * laid out as this version writes it; anything else is simply packed again.
 */
function rememberBytes(buf: Buffer, s: Snapshot): void {
  try {
    const top = entriesAt(buf, 0);
    const ap = top?.get('applied');
    const a = ap && entriesAt(buf, ap[0]);
    if (!a) return;
    const applied = s.applied as unknown as Record<string, unknown>;
    const keep = (v: unknown, r: [number, number] | undefined) => { if (r && v !== null && typeof v === 'object') packed.set(v, buf.subarray(r[0], r[1])); };
    for (const k of RECORDS) keep(applied[k], a.get(k));
    const al = a.get('allocation');
    const alloc = al && entriesAt(buf, al[0]);
    if (alloc) for (const k of ['services', 'reals']) keep((s.applied.allocation as unknown as Record<string, unknown>)[k], alloc.get(k));
    const cf = a.get('config');
    const svcs = cf && entriesAt(buf, cf[0])?.get('services');
    const list = svcs && container(buf, svcs[0]);
    const services = s.applied.config.services;
    if (!list || list.map || list.n !== services.length) return;
    let at = list.at;
    for (const svc of services) {
      const end = skip(buf, at);
      packed.set(svc, buf.subarray(at, end));
      at = end;
    }
  } catch {
    // not laid out as expected: packed again when written
  }
}

/** Older snapshot versions, brought to the current one (in memory; written back on the next change). */
function migrate(s: Snapshot): Snapshot {
  if (s.version === 1) {
    const p = s.pending as (AppliedState & { startedAt: string }) | undefined;
    if (p) {
      const { startedAt, ...target } = p;
      s.pending = { target, startedAt };
    }
    s.version = 2;
  }
  // 2 -> 3 (issue 12): ghosts, unresolved and drains are optional, absent means none (what
  // version 2 deleted was cleared at once).
  if (s.version === 2) s.version = 3;
  // 3 -> 4 (issue 15): the configuration may carry firewall marks (absent: none) and services
  // with a fwmark; bumped so that an older lvs-xdp refuses the file instead of dropping marks.
  if (s.version === 3) s.version = 4;
  // 4 -> 5 (issue 14): applied.sync, absent means off (what version 4 ran: no sync events);
  // bumped so that an older lvs-xdp refuses the file instead of dropping the setting.
  if (s.version === 4) s.version = 5;
  return s;
}

export function readSnapshot(path: string): Snapshot | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw translateNativeError(e, { action: `read ${path}`, path });
  }
  return decodeSnapshot(buf, path);
}

export function writeSnapshot(path: string, s: Snapshot, encoded?: ReadonlyMap<object, Buffer>): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  chmodSync(dirname(path), 0o700);
  try {
    // The snapshot in memory says when it was written, as the file does (a long-lived Director
    // keeps using it without reading the file back).
    s.updatedAt = new Date().toISOString();
    writeFileAtomicSync(path, encodeSnapshot(s, encoded), 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new StateError(`could not write the state snapshot ${path}: ${code ?? (e as Error).message}`, {
      hint: code === 'ENOSPC'
        ? 'the file system is full: free space and run the command again (a change that got half-way is completed by the next command)'
        : 'check the state directory (--state-dir)',
    });
  }
}

export function removeSnapshot(path: string): void {
  rmSync(path, { force: true });
}
