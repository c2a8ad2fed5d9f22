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
 * `encoded`: values already packed, by identity (an apply's target: recorded as pending, then
 * as applied), spliced in instead of packed again. A plain msgpack map either way.
 */
export function encodeSnapshot(s: Snapshot, encoded?: ReadonlyMap<object, Buffer>): Buffer {
  if (!encoded?.size) return packr.pack(s);
  return packSpliced(s as unknown as Record<string, unknown>, encoded);
}

/** Packs `value` once, for encodeSnapshot's `encoded` (a copy: msgpackr reuses its buffer). */
export function packOnce(value: object): Buffer {
  return Buffer.from(packr.pack(value));
}

function packSpliced(o: Record<string, unknown>, encoded: ReadonlyMap<object, Buffer>): Buffer {
  const keys = Object.keys(o);
  const head = keys.length < 16 ? Buffer.from([0x80 | keys.length])
    : keys.length < 0x10000 ? Buffer.from([0xde, keys.length >> 8, keys.length & 0xff])
      : Buffer.from([0xdf, keys.length >>> 24, (keys.length >> 16) & 0xff, (keys.length >> 8) & 0xff, keys.length & 0xff]);
  const parts: Buffer[] = [head];
  for (const k of keys) {
    const v = o[k];
    parts.push(Buffer.from(packr.pack(k)));
    const done = v !== null && typeof v === 'object' ? encoded.get(v) : undefined;
    if (done) parts.push(done);
    else if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).some((x) => x !== null && typeof x === 'object' && encoded.has(x))) {
      parts.push(packSpliced(v as Record<string, unknown>, encoded));
    } else {
      parts.push(Buffer.from(packr.pack(v)));
    }
  }
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
  return migrate(o as Snapshot);
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
