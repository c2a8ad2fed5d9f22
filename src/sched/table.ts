/**
 * Per-service lookup tables and which packet fields index them.
 *
 * mh, sh and dh all use a Maglev table; they differ only in the flow fields the data plane hashes
 * (IPVS sh hashes the client address, dh the destination, mh here the 5-tuple). rr and wrr use a
 * rotation the data plane walks with a per-CPU cursor.
 */
import { realserverKey, tableSizeOf, type VirtualService } from '../model/types.js';
import { REAL_NONE, maglev } from './maglev.js';
import { rotation } from './rotate.js';
import { candidates } from './lc.js';

export type HashField = 'saddr' | 'sport' | 'daddr' | 'dport' | 'proto';
/** 'rotate': not hashed, the table is walked in order (rr / wrr); 'candidates': the
 *  least-connection family draws from it by the 5-tuple's hash and compares live counts. */
export type TableIndexing = HashField | 'rotate' | 'candidates';

const FIVE_TUPLE: readonly HashField[] = ['saddr', 'sport', 'daddr', 'dport', 'proto'];

/** The flow fields that select a slot of this service's table. */
export function hashFieldsFor(svc: Pick<VirtualService, 'scheduler' | 'flags'>): ReadonlySet<TableIndexing> {
  switch (svc.scheduler) {
    case 'mh':
      return new Set(FIVE_TUPLE);
    case 'sh':
      return new Set<HashField>(svc.flags.includes('sh-port') ? ['saddr', 'sport'] : ['saddr']);
    case 'dh':
      return new Set<HashField>(['daddr']);
    case 'rr':
    case 'wrr':
      return new Set<TableIndexing>(['rotate']);
    default:
      return new Set<TableIndexing>(['candidates']);
  }
}

export interface BuildOptions {
  /** Size used when the service has no tableSize (default: tableSizeOf, by its realservers). */
  defaultSize?: number;
}

/** The table this service's realservers produce: slot -> index into svc.realservers. */
export function buildTable(svc: Pick<VirtualService, 'scheduler' | 'tableSize' | 'realservers'>, opts: BuildOptions = {}): Uint32Array {
  const size = svc.tableSize ?? opts.defaultSize ?? tableSizeOf(svc);
  const keyed = svc.realservers.map((rs) => ({ key: realserverKey(rs), weight: rs.weight }));
  switch (svc.scheduler) {
    case 'mh':
    case 'sh':
    case 'dh':
      return maglev(keyed, size);
    case 'rr':
      return rotation(keyed, size, true);
    case 'wrr':
      return rotation(keyed, size, false);
    default:
      return candidates(svc.scheduler, keyed, size);
  }
}

function slotKeys(table: Uint32Array, keys: readonly string[]): (string | null)[] {
  return Array.from(table, (i) => (i === REAL_NONE ? null : keys[i] ?? null));
}

function shares(table: Uint32Array, keys: readonly string[]): Map<string | null, number> {
  const count = new Map<string | null, number>();
  for (const k of slotKeys(table, keys)) count.set(k, (count.get(k) ?? 0) + 1);
  for (const [k, c] of count) count.set(k, c / table.length);
  return count;
}

/**
 * Share (0..1) of flows whose realserver changes between two tables, realservers compared by key.
 * Same size: the share of slots whose key differs. Different sizes rehash every flow (slot =
 * hash % size), so a flow keeps its realserver only by chance: 1 - sum over keys of the product
 * of the key's shares in both tables.
 */
export function slotShareMoved(
  oldTable: Uint32Array, oldKeys: readonly string[], newTable: Uint32Array, newKeys: readonly string[],
): number {
  if (oldTable.length === 0 || newTable.length === 0) return oldTable.length === newTable.length ? 0 : 1;
  if (oldTable.length !== newTable.length) {
    const before = shares(oldTable, oldKeys);
    let same = 0;
    for (const [k, p] of shares(newTable, newKeys)) same += p * (before.get(k) ?? 0);
    return 1 - same;
  }
  let moved = 0;
  for (let i = 0; i < oldTable.length; i++) {
    const a = oldTable[i]!;
    const b = newTable[i]!;
    const ka = a === REAL_NONE ? null : oldKeys[a];
    const kb = b === REAL_NONE ? null : newKeys[b];
    if (ka !== kb) moved++;
  }
  return moved / oldTable.length;
}
