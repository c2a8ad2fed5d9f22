/**
 * What is asked of an applied state's objects again and again, computed once per object: they
 * are never modified once applied (a change builds new ones), so the answer stays true. A change
 * at a thousand services asks these of the running state in resolution, plan and snapshot.
 */
import type { VirtualService } from '../model/types.js';
import type { AppliedState } from './snapshot.js';

const keyLists = new WeakMap<object, string[]>();

/** The keys of a record of an applied state (its digests, table slots, realserver values...). */
export function keysOf(record: object): string[] {
  let k = keyLists.get(record);
  if (!k) keyLists.set(record, (k = Object.keys(record)));
  return k;
}

const services = new WeakMap<AppliedState, Set<VirtualService>>();

/** The running services of an applied state, by object (a change keeps those it leaves alone). */
export function liveServices(applied: AppliedState): ReadonlySet<VirtualService> {
  let set = services.get(applied);
  if (!set) services.set(applied, (set = new Set(applied.config.services)));
  return set;
}
