/**
 * The snapshot: what the pinned maps cannot say by themselves (the configuration as the operator
 * wrote it, slot allocation, resolved MACs, load-time sizes), msgpackr-encoded with a format tag
 * and version so that a corrupt or foreign file is a clear error. Written atomically (rename),
 * mode 0600 in a 0700 directory. An apply in progress is recorded as `pending`, so that a
 * process killed half-way leaves a record the next call can finish from.
 */
import { mkdirSync, readFileSync, rmSync, chmodSync, openSync, fstatSync, readSync, closeSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { Packr } from 'msgpackr';
import { writeFileAtomicSync } from './atomic.js';
import { keysOf } from './records.js';
import { StateError, translateNativeError } from '../errors.js';
import type { DirectorConfig, VirtualService } from '../model/types.js';
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
 * 6 (issue 16): the file is a sequence of values, the applied state's large records and each
 * service one value of their own (see encodeSnapshot); the state in memory is as in version 5.
 * 7 (issue 16): a change commits what it changed, against the file, beside it (`<file>.delta`,
 * see writeCommitted); a record may be written as the values that changed.
 * Older snapshots are read and migrated (see migrate()).
 */
export const SNAPSHOT_VERSION = 7;

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
  /** Written by each write of the file (version 6), so that a pending record beside it (see
   *  writePending) says which state it starts from. */
  seq?: number;
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

/*
 * The file (version 6) is a sequence of msgpack values: a head (the snapshot without the applied
 * state's large records, with `parts` counting the services that follow), then the applied
 * state's records (RECORDS, in that order; nil when absent) and its services one value each, then
 * the same for a pending apply's target. Each record and service is a value of its own, so its
 * bytes are known when read (msgpack says where each value of a sequence ends) and copied
 * instead of packed again when written, as long as the object is the same: a change keeps the
 * objects of what it leaves alone (src/director/plan.ts), so writing a one-realserver change at
 * a thousand services packs one service and the records that changed. Versions 1-5 were one
 * msgpack map; they are read as such.
 */

/** The applied state's large records, as paths: written after the head, in this order. */
const RECORDS = [['allocation', 'services'], ['allocation', 'reals'], ['l2'], ['reals'], ['digests'], ['tableSlots']] as const;
const NIL = Buffer.from([0xc0]);

/**
 * Packed bytes by object (records and services of applied states), packed once or as read. These
 * objects are never modified once in an applied state (a change builds new ones).
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

type Loose = Record<string, unknown>;

const recordOf = (a: AppliedState, path: readonly string[]): unknown => (path.length === 2 ? (a.allocation as unknown as Loose)[path[1]!] : (a as unknown as Loose)[path[0]!]);
/** A reference to the applied state's record of the same place (a pending record's). */
const SAME = Buffer.from([0x01]);

/** The position of each service of an applied state (written against: references), per state. */
const positions = new WeakMap<AppliedState, Map<VirtualService, number>>();
/** A reference to the service at position i of the base, as packed (msgpack uint). */
const refs: Buffer[] = [];
function ref(i: number): Buffer {
  return (refs[i] ??= Buffer.from(packr.pack(i)));
}

/**
 * A record that holds base's keys in base's order and differs in a few values: those values, as
 * `[changes]` (an array: a record is a map), read back over base's record. Undefined otherwise.
 * (A weight changes one service's digest and table slot: two values of a thousand.)
 */
function recordDelta(v: Loose, b: Loose): Buffer | undefined {
  const kv = keysOf(v);
  const kb = keysOf(b);
  if (kv.length !== kb.length) return undefined;
  const changes: Loose = {};
  let n = 0;
  for (let i = 0; i < kv.length; i++) {
    const k = kv[i]!;
    if (k !== kb[i]) return undefined;
    if (v[k] !== b[k]) {
      changes[k] = v[k];
      if (++n > kv.length >> 2) return undefined;
    }
  }
  return Buffer.from(packr.pack([changes]));
}

/**
 * An applied state split into its head (small fields) and the values that follow it. `base`: the
 * applied state it is written against (a pending record's, a committed delta's): its records and
 * services that are base's objects are written as references (1, the service's position in
 * base), and a record that changed a few of base's values as those values.
 */
function split(a: AppliedState, base?: AppliedState): { head: Loose; items: Buffer[]; services: number } {
  const { config, allocation, l2: _l2, reals: _reals, digests: _digests, tableSlots: _slots, ...rest } = a;
  const { services, ...configRest } = config;
  const { services: _s, reals: _r, ...allocRest } = allocation;
  const items = RECORDS.map((path) => {
    const v = recordOf(a, path);
    const b = base && recordOf(base, path);
    if (base && v !== undefined && v === b) return SAME;
    const delta = v && b && typeof v === 'object' && typeof b === 'object' ? recordDelta(v as Loose, b as Loose) : undefined;
    return delta ?? (v !== null && typeof v === 'object' ? cached(v) : NIL);
  });
  let at: Map<VirtualService, number> | undefined;
  if (base) {
    at = positions.get(base);
    if (!at) positions.set(base, (at = new Map(base.config.services.map((x, i) => [x, i] as const))));
  }
  for (const svc of services) {
    const i = at?.get(svc);
    items.push(i !== undefined ? ref(i) : cached(svc));
  }
  return { head: { ...rest, config: configRest, allocation: allocRest }, items, services: services.length };
}

/** The snapshot's bytes (see above): what was packed or read before is copied. */
export function encodeSnapshot(s: Snapshot): Buffer {
  return Buffer.concat(snapshotParts(s));
}

/** The snapshot's bytes in parts, in order (written as they are). `base`: the state of the file
 *  a delta is written against (see writeCommitted). */
function snapshotParts(s: Snapshot, base?: Base): Buffer[] {
  const { applied, pending, ...rest } = s as Snapshot & Loose;
  const head: Loose = { ...rest };
  if (base) head.base = base.seq;
  const items: Buffer[] = [];
  const parts: Loose = {};
  if (applied) {
    const a = split(applied, base?.applied);
    head.applied = a.head;
    parts.applied = a.services;
    items.push(...a.items);
  }
  if (pending) {
    const { target, ...prest } = pending;
    head.pending = prest;
    if (target) {
      const t = split(target);
      (head.pending as Loose).target = t.head;
      parts.target = t.services;
      items.push(...t.items);
    }
  }
  head.parts = parts;
  return [Buffer.from(packr.pack(head)), ...items];
}

/** An applied state's bytes as a snapshot writes them (its records' bytes are kept for the next write). */
export function packOnce(value: AppliedState): Buffer {
  const a = split(value);
  return Buffer.concat([Buffer.from(packr.pack(a.head)), ...a.items]);
}

type Values = { v: unknown; start: number; end: number }[];

/** The values of a msgpack sequence with where each starts and ends. */
function valuesOf(buf: Buffer, where: string): Values {
  const values: Values = [];
  try {
    packr.unpackMultiple(buf, (v: unknown, start?: number, end?: number) => { values.push({ v, start: start!, end: end! }); });
  } catch (e) {
    throw new StateError(`state snapshot ${where} is corrupt (${e instanceof Error ? e.message : String(e)})`, {
      hint: 'the data plane keeps forwarding with what is in its maps; `lvs-xdp detach` then attach again rebuilds the state',
    });
  }
  return values;
}

/** Checks a head's tag and version. */
function checkHead(o: Partial<Snapshot> | null | undefined, where: string): void {
  if (!o || typeof o !== 'object' || o.format !== SNAPSHOT_FORMAT) {
    throw new StateError(`${where} is not an lvs-xdp state snapshot`, { hint: 'check --pin-dir / --state-dir (or LVS_XDP_PIN_DIR / LVS_XDP_STATE_DIR)' });
  }
  if (typeof o.version !== 'number' || o.version > SNAPSHOT_VERSION) {
    throw new StateError(`state snapshot ${where} has version ${String(o.version)}, this lvs-xdp reads up to ${SNAPSHOT_VERSION}`, {
      hint: `it was written by lvs-xdp ${String(o.tool)}; use that version or newer`,
    });
  }
}

/**
 * Reads an applied state from `values` at `cursor.at` on (its head given): its records, then
 * `services` services, each remembered with the bytes it was read from. `base`: what references
 * (a pending record's) stand for.
 */
function joinApplied(buf: Buffer, values: Values, cursor: { at: number }, head: unknown, services: unknown, where: string, base?: AppliedState): AppliedState {
  const incomplete = () => new StateError(`state snapshot ${where} is incomplete`);
  if (!head || typeof head !== 'object' || typeof services !== 'number') throw incomplete();
  const h = head as Loose;
  const take = (): unknown => {
    const x = values[cursor.at++];
    if (!x) throw incomplete();
    if (x.v !== null && typeof x.v === 'object') packed.set(x.v, buf.subarray(x.start, x.end));
    return x.v;
  };
  const a: Loose = { ...h, allocation: { ...(h.allocation as Loose) } };
  for (const path of RECORDS) {
    let v = take();
    if (typeof v === 'number') {
      if (!base) throw incomplete();
      v = recordOf(base, path);
    } else if (Array.isArray(v)) {
      // The values that changed, over base's record (recordDelta).
      const b = base && recordOf(base, path);
      if (!b || typeof b !== 'object' || !v[0] || typeof v[0] !== 'object') throw incomplete();
      v = { ...(b as Loose), ...(v[0] as Loose) };
    }
    if (v === null || v === undefined) continue;
    if (path.length === 2) (a.allocation as Loose)[path[1]] = v;
    else a[path[0]] = v;
  }
  const list: unknown[] = [];
  for (let i = 0; i < services; i++) {
    const v = take();
    if (typeof v === 'number') {
      const svc = base?.config.services[v];
      if (!svc) throw incomplete();
      list.push(svc);
    } else {
      list.push(v);
    }
  }
  a.config = { ...(h.config as Loose), services: list };
  return a as unknown as AppliedState;
}

/** Decodes and checks the tag and version; `where` names the file in errors. */
export function decodeSnapshot(buf: Buffer, where: string): Snapshot {
  return decodeFile(buf, where).snap;
}

/** decodeSnapshot, with the version the file was written in. `base`: the state a delta file
 *  (writeCommitted) is written against. */
function decodeFile(buf: Buffer, where: string, base?: AppliedState, values = valuesOf(buf, where)): { snap: Snapshot; version: number; head: Buffer } {
  const o = values[0]?.v as (Partial<Snapshot> & { parts?: { applied?: number; target?: number } }) | null | undefined;
  // One value (versions 1-5), or a head that says what follows it.
  if (values.length > 1 && !(o && typeof o === 'object' && o.parts)) {
    throw new StateError(`state snapshot ${where} is corrupt (data after the end of the snapshot)`, {
      hint: 'the data plane keeps forwarding with what is in its maps; `lvs-xdp detach` then attach again rebuilds the state',
    });
  }
  checkHead(o, where);
  const snap = o!;
  const version = snap.version!;
  if (snap.parts) {
    // Version 6: the records and services follow the head.
    const cursor = { at: 1 };
    const { parts, ...head } = snap;
    if (head.applied) head.applied = joinApplied(buf, values, cursor, head.applied, parts.applied, where, base);
    const pend = head.pending as unknown as Loose | undefined;
    if (pend?.target) pend.target = joinApplied(buf, values, cursor, pend.target, parts.target, where);
    if (cursor.at !== values.length) throw new StateError(`state snapshot ${where} is incomplete`);
    Object.assign(snap, head);
    delete snap.parts;
  }
  if (!snap.applied || !snap.interfaces || !snap.sizes) throw new StateError(`state snapshot ${where} is incomplete`);
  return { snap: migrate(snap as Snapshot), version, head: buf.subarray(values[0]!.start, values[0]!.end) };
}

/** Where the changes committed since the snapshot was last written whole are kept (writeCommitted). */
export function deltaPath(path: string): string {
  return `${path}.delta`;
}

/** The state a snapshot file holds whole (read or written): what a delta is written against. */
interface Base { applied: AppliedState; seq: number; bytes: number }
const bases = new WeakMap<Snapshot, Base>();

/** A delta no larger than this (or a quarter of the file) is written instead of the whole file. */
const DELTA_MIN = 64 * 1024;

/**
 * Commits `s` (an apply's target now applied): as the changes against the file at `path` when
 * they are small (`<path>.delta`: the snapshot as it is now, its applied state's records and
 * services that are the file's written as references, see split), else the whole file again.
 * A one-realserver change at a thousand services writes a few KB instead of the 1.5 MB state.
 * The delta names the write of the file it is against (`base`) and has a `seq` of its own: a
 * pending record written from it (writePending) is pending only against it, and a delta left
 * behind by a later whole write is not read.
 */
export function writeCommitted(path: string, s: Snapshot): void {
  const base = bases.get(s);
  const small = (parts: Buffer[]) => (byteLength(parts) <= Math.max(DELTA_MIN, base!.bytes >> 2) ? parts : undefined);
  if (base && !s.pending && writeStamped(deltaPath(path), s, () => small(snapshotParts(s, base)))) return;
  writeSnapshot(path, s);
}

const byteLength = (parts: readonly Buffer[]): number => parts.reduce((n, p) => n + p.length, 0);

/**
 * Writes at `path` the parts `make` packs of `s` stamped as its next write, and returns them;
 * undefined (nothing written) when `make` gives none. The snapshot in memory says when it was
 * written, as the file does (a long-lived Director keeps using it without reading the file
 * back); its seq only once a file has it (put back when nothing is written, or the write fails).
 */
function writeStamped(path: string, s: Snapshot, make: () => Buffer[] | undefined): Buffer[] | undefined {
  const seq = s.seq;
  s.updatedAt = new Date().toISOString();
  s.seq = (seq ?? 0) + 1;
  const parts = make();
  try {
    if (parts) atomicWrite(path, parts);
  } catch (e) {
    s.seq = seq;
    throw e;
  }
  if (!parts) s.seq = seq;
  return parts;
}

/** A file kept beside the snapshot (a delta, a pending record), or undefined when there is none. */
function readBeside(where: string): Buffer | undefined {
  try {
    return readFileSync(where);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw translateNativeError(e, { action: `read ${where}`, path: where });
  }
}

/** The delta beside a snapshot (read as `b`), when it is one against that write of it. */
function readDelta(path: string, b: Base): Snapshot | undefined {
  const where = deltaPath(path);
  const buf = readBeside(where);
  if (!buf) return undefined;
  // Its head says which write of the file it is against: another one's is left behind (stale).
  const values = valuesOf(buf, where);
  const head = values[0]?.v as { base?: unknown } | undefined;
  if (!head || typeof head !== 'object' || head.base !== b.seq) return undefined;
  const s = decodeFile(buf, where, b.applied, values).snap as Snapshot & { base?: number };
  delete s.base;
  return s;
}

/** Where the record of an apply in progress is kept, beside the snapshot (see writePending). */
export function pendingPath(path: string): string {
  return `${path}.pending`;
}

/**
 * Records `s.pending` (an apply about to write its steps) beside the snapshot at `path`, whose
 * content `s` is: the target's records and services that are the applied state's own are written
 * as references, so a one-realserver change records that service and the records that changed,
 * not the whole configuration again. The record names the snapshot write it starts from
 * (`seq`): one left behind by a change that committed (killed before it was removed) is not
 * pending any more. Read back by readSnapshot.
 */
export function writePending(path: string, s: Snapshot): void {
  const { target, ...rest } = s.pending!;
  const t = split(target, s.applied);
  const head = { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, tool: s.tool, base: s.seq ?? 0, pending: { ...rest, target: t.head }, parts: { target: t.services } };
  atomicWrite(pendingPath(path), [Buffer.from(packr.pack(head)), ...t.items]);
}

/** The pending record beside a snapshot (read as `s`), if it is one for that state. */
function readPending(path: string, s: Snapshot): PendingPlan | undefined {
  const where = pendingPath(path);
  const buf = readBeside(where);
  if (!buf) return undefined;
  const values = valuesOf(buf, where);
  const head = values[0]?.v as (Partial<Snapshot> & { base?: number; parts?: { target?: number } }) | undefined;
  checkHead(head, where);
  if (head!.base !== (s.seq ?? 0)) return undefined; // a later write of the snapshot: committed
  const p = head!.pending as unknown as Loose | undefined;
  if (!p?.target || !head!.parts) throw new StateError(`state snapshot ${where} is incomplete`);
  const cursor = { at: 1 };
  p.target = joinApplied(buf, values, cursor, p.target, head!.parts.target, where, s.applied);
  if (cursor.at !== values.length) throw new StateError(`state snapshot ${where} is incomplete`);
  return p as unknown as PendingPlan;
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
  // 5 -> 6 (issue 16): the file's layout only (read by decodeSnapshot); bumped so that an older
  // lvs-xdp refuses the file instead of reading its head alone.
  if (s.version === 5) s.version = 6;
  // 6 -> 7 (issue 16): changes committed beside the file (readSnapshot), records as changed
  // values; bumped so that an older lvs-xdp refuses the file instead of missing the changes.
  if (s.version === 6) s.version = 7;
  return s;
}

/**
 * The last file of version 7 on read or written at each path, with its bytes (kept anyway: the
 * records and services read from it are copied from them when written): a process that reads the
 * state again after another one committed a change (a delta beside the file) compares the file
 * (~0.3 ms for 1.5 MB) and decodes the delta only. The applied state is shared (never modified
 * once applied); the head is unpacked anew for each reader.
 */
interface Whole extends Base { file: Buffer; head: Buffer; ident: string }
const wholes = new Map<string, Whole>();

/** `head`: the file's first value (the snapshot without the applied state's records and services). */
function remember(path: string, file: Buffer, head: Buffer, s: Snapshot, base: Base, ident: string): void {
  if (s.pending) return; // (only versions before 6 kept a pending apply inside the file)
  wholes.set(path, { ...base, file, head, ident });
}

/** The snapshot a remembered file holds (its head unpacked anew, its applied state shared). */
function recall(known: Whole): Snapshot {
  const { parts: _p, ...head } = packr.unpack(known.head) as Snapshot & { parts?: unknown };
  return migrate({ ...head, applied: known.applied } as Snapshot);
}

/** What identifies a file's content without reading it: each write renames a new file into place. */
const identity = (st: Stats): string => `${st.ino}/${st.size}/${st.mtimeMs}/${st.ctimeMs}`;

/** The file, unless it is the remembered one (the same identity and the same head, which names
 *  the write: its `seq` and time), which is not read again (1.5 MB at a thousand services). */
function readUnlessKnown(path: string, known: Whole | undefined): { buf?: Buffer; ident: string } {
  const fd = openSync(path, 'r');
  try {
    const ident = identity(fstatSync(fd));
    if (known && known.ident === ident) {
      const head = Buffer.alloc(known.head.length);
      if (readSync(fd, head, 0, head.length, 0) === head.length && head.equals(known.head)) return { ident };
    }
    return { buf: readFileSync(fd), ident };
  } finally {
    closeSync(fd);
  }
}

export function readSnapshot(path: string): Snapshot | undefined {
  const known = wholes.get(path);
  let read: { buf?: Buffer; ident: string };
  try {
    read = readUnlessKnown(path, known);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw translateNativeError(e, { action: `read ${path}`, path });
  }
  const buf = read.buf ?? known!.file;
  let s: Snapshot;
  let base: Base | undefined;
  if (known?.file.equals(buf)) {
    base = known;
    s = readDelta(path, base) ?? recall(known);
  } else {
    const file = decodeFile(buf, path);
    s = file.snap;
    // Version 7 on: the changes committed since it was written whole, beside it. (A version 6
    // file was written by an lvs-xdp that does not read them: it is written whole first.)
    if (file.version >= 7) {
      base = { applied: file.snap.applied, seq: file.snap.seq ?? 0, bytes: buf.length };
      remember(path, buf, file.head, file.snap, base, read.ident);
      s = readDelta(path, base) ?? s;
    }
  }
  if (base) bases.set(s, base);
  // An apply in progress (recorded beside the file; older versions recorded it inside).
  if (!s.pending) {
    const p = readPending(path, s);
    if (p) s.pending = p;
  }
  return s;
}

export function writeSnapshot(path: string, s: Snapshot): void {
  const parts = writeStamped(path, s, () => snapshotParts(s))!;
  // The file holds all of it now: a delta beside it is against an earlier write (not read).
  const base = { applied: s.applied, seq: s.seq!, bytes: byteLength(parts) };
  bases.set(s, base);
  // (Stated after the rename under the lock: no other write in between.)
  remember(path, Buffer.concat(parts), parts[0]!, s, base, identity(statSync(path)));
  rmSync(deltaPath(path), { force: true });
}

/** Writes a state file atomically (0600 in a 0700 directory); a failure is a StateError saying why. */
function atomicWrite(path: string, data: readonly Buffer[]): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  chmodSync(dirname(path), 0o700);
  try {
    writeFileAtomicSync(path, data, 0o600);
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
  wholes.delete(path);
  rmSync(path, { force: true });
  rmSync(pendingPath(path), { force: true });
  rmSync(deltaPath(path), { force: true });
}

/** Removes the pending record beside the snapshot (its apply committed). */
export function removePending(path: string): void {
  rmSync(pendingPath(path), { force: true });
}
