/**
 * A change to the director as data: the resolved inputs, the compiled output, the slot
 * allocation and the ordered steps that take the maps from the running state to the target.
 * Pure: nothing here reads or writes a map, spawns a process or touches a file, so a plan can be
 * printed before it runs (`apply --dry-run --steps`), stored in the snapshot and replayed after a
 * crash, and built by the test harnesses. src/director/writer.ts executes plans.
 *
 * Step order (no packet ever sees a half-written state; see design-facts: ARRAY slots are copied
 * in place, HASH entries and map-in-map slots are swapped whole):
 *   vip-filter (old | new bits)  a set bit only means "look it up", so widen first
 *   settings                    lvs_cfg, with the filter switched on (it covers every service),
 *                               when it differs from what the running state wrote
 *   tx-ports                    new egress interfaces for XDP_REDIRECT
 *   zero                        statistics (and live connection counts) of slots that start life in this change
 *   reals                       realserver slots and their lvs_dests (weight, thresholds): new ones are
 *                               unreferenced until a table names them
 *   tables                      each changed service's table into its spare lvs_tables slot
 *   remove                      tombstones whose time is up, or whose id a new service takes
 *   switch                      each changed service entry points at its new table (one HASH update)
 *   marks                       firewall-mark classification (lvs_fwmarks): new and changed
 *                               entries, then the ones that went (a missing mark service or entry
 *                               only means the port service, as a mark without service in IPVS)
 *   tombstones                  services that went: their entries flagged gone (connections wait)
 *   remove                      services that went with expire-nodest-conn, now nothing refers to them
 *   free-tables                 the lvs_tables slots of removed services (park-tables when there
 *                               are BULK_RETIRE or more: all of them at one placeholder table)
 *   gone-reals                  realserver slots no table names any more, flagged gone (their
 *                               connections wait: dropped, not rescheduled, until they come back)
 *   clear-reals                 slots emptied for good (ghosts whose time is up, moved realservers,
 *                               expire-nodest-conn): their flows reschedule
 *   vip-filter (new)            bits of removed services and tombstones go last
 *
 * Deleted is not forgotten (IPVS keeps a deleted service's connections until they expire): a
 * deleted service leaves a tombstone, a deleted realserver a "gone" slot, recorded as ghosts in
 * the applied state with their deletion time. The same service / realserver (same forwarding
 * data) added again gets its id, slot and generation back, so its connections resume. Ghosts go
 * once the longest timeout has passed since their deletion (the plan's `now`), when their id or
 * slot is needed because the maps are full (the oldest first), or at once with
 * settings.expire-nodest-conn.
 *
 * Not part of a configuration's plan: `l2-addrs` (the accepted destination MACs, see
 * acceptStep) is written by the lifecycle whenever the interfaces are read again.
 */
import { createHash } from 'node:crypto';
import {
  compileDirector, compileMarkEntries, emptyAllocation, encodeService, encodeDest, realId, splitRealId, serviceKey, timeoutsByState, COMPILER_EPOCH,
  type Allocation, type CompiledDirector, type CompiledReal, type L2Next, type Limits, type MacResolver, type Reuse,
  type CompiledService,
} from '../dataplane/compile.js';
import { vipFilterWords, vipWordValue } from '../dataplane/vipfilter.js';
import { decode, CFG, REAL, SVC, SVC_KEY } from '../abi/layout.js';
import { ABI, ABI_VERSION } from '../abi/generated.js';
import { VERSION } from '../version.js';
import { emptyConfig, serviceId, realserverKey, type DirectorConfig, type VirtualService, type Realserver } from '../model/types.js';
import type { AppliedState, Ghosts } from './snapshot.js';
import { keysOf, liveServices } from './records.js';
import { sameAccepted, ifEntries, type AcceptedMac, type AcceptedIf } from '../dataplane/l2addrs.js';

export interface RealWrite {
  /** Allocation key (`serviceId/rip`), for printing; harness steps may leave it out. */
  id?: string;
  index: number;
  value: Buffer;
  /** A slot that starts life here: its statistics are zeroed first. */
  fresh?: boolean;
  /** Its lvs_dests value (weight, thresholds), written with it; harness steps may leave it out. */
  dest?: Buffer;
}
export interface TableFill {
  service: string;
  svcId: number;
  /** lvs_tables slot (the service's spare one: 2*svcId or 2*svcId+1). */
  slot: number;
  /** Inline entries (harnesses); otherwise the plan's compiled table of `service`. */
  table?: Uint32Array;
}
export interface ServiceWrite { service: string; key: Buffer; value: Buffer }

export type Step =
  | { op: 'vip-filter'; words: [number, Buffer][] }
  | { op: 'settings'; value: Buffer }
  | { op: 'tx-ports'; ifindexes: number[] }
  | { op: 'zero'; services: number[]; reals: number[] }
  | { op: 'reals'; writes: RealWrite[] }
  /** `retire`: the live lvs_tables slots of services this change leaves alone; the other slot of
   *  each pair (slot ^ 1) takes a reference to that table in the same batch, freeing the previous
   *  table it held (see buildPlan). */
  | { op: 'tables'; fills: TableFill[]; retire?: number[] }
  | { op: 'switch'; writes: ServiceWrite[] }
  /** A bulk change's switched services: the other slot of each (slot ^ 1, its previous table)
   *  takes a reference to the live table in one batch, freeing the previous tables now. */
  | { op: 'retire'; slots: number[] }
  | { op: 'remove'; services: { service: string; key: Buffer }[] }
  | { op: 'free-tables'; slots: number[] }
  /** Many removed services' slots (a `-C`, a new configuration): pointed at one empty placeholder
   *  table in one batch (one RCU grace period), where deleting them waits one grace period each
   *  (the kernel has no batch delete for ARRAY_OF_MAPS). No service names them any more. */
  | { op: 'park-tables'; slots: number[] }
  | { op: 'clear-reals'; indexes: number[] }
  | { op: 'tombstones'; writes: ServiceWrite[] }
  | { op: 'gone-reals'; writes: RealWrite[] }
  /** Firewall-mark classification entries written (new or changed) and deleted (lvs_fwmarks). */
  | { op: 'marks'; put: { key: Buffer; value: Buffer }[]; remove: Buffer[] }
  /** Accepted destination MACs: new and changed lvs_l2_addrs entries, then the changed lvs_l2_ifs
   *  entries (what the data plane checks first), then the lvs_l2_addrs entries that went. */
  | { op: 'l2-addrs'; put: AcceptedMac[]; ifs: AcceptedIf[]; remove: { ifindex: number; mac: string }[] };

export type StepOp = Step['op'];

export interface Plan {
  /** What the snapshot records once every step is written. */
  target: AppliedState;
  steps: Step[];
  /** Tables of the target, built on first use (a change to one service builds one table). */
  compiled?: CompiledDirector;
}

/** Everything a plan is a function of, resolved beforehand (MACs, routes: outside the lock). */
export interface PlanInputs {
  running: AppliedState;
  desired: DirectorConfig;
  /** `serviceId/rip` -> next hop, for every realserver of `desired` but those of `kept`. */
  l2: ReadonlyMap<string, L2Next>;
  /** Running services (the same objects) whose realservers keep the next hops `running.l2`
   *  records (src/director/transaction.ts resolveInputs): left out of `l2`. */
  kept?: ReadonlySet<VirtualService>;
  /** Tun outer sources in effect (configured or from the routing table). */
  tunnel: { source4?: string; source6?: string };
  limits: Limits;
  /** Replay an interrupted plan's allocation instead of allocating anew. */
  allocation?: Allocation;
  /** The time of the change (ms since the epoch): ghosts are dated and expired with it. */
  now?: number;
  /** Connection sync events (lvs_cfg LVS_CFG_F_SYNC, sync_refresh_s); absent: as running. */
  sync?: SyncSetting;
  /** Compile every service anew instead of taking the entries of the services the change leaves
   *  alone from the running state (the tests compare both: the same plan). */
  fromScratch?: boolean;
}

/** The compiler a running state's entries were recorded by (AppliedState.compiler): the package
 *  version, the data plane's ABI (its value layouts) and the compiler's epoch. Entries recorded
 *  by another one (an older lvs-xdp, a state an upgrade carried over) are compiled again. */
/** Table fills from which a change frees its switched services' previous tables at once (one RCU
 *  grace period, ~8 ms here) rather than at the next change: a restore or a new configuration,
 *  never a one-realserver change. */
export const BULK_RETIRE = 16;

export const COMPILER = `${VERSION}+abi${ABI_VERSION}+${COMPILER_EPOCH}`;

/**
 * Connection sync's data-plane switch (bpf/lvs_sync.h): whether the director reports its
 * connection entries in lvs_sync_events, and every how many seconds a live established / UDP
 * entry is reported again (0: on state changes only). Part of the applied state, so every
 * later plan writes lvs_cfg with it and a restarted `run` finds it.
 */
export interface SyncSetting { on: boolean; refreshS: number }

/** lvs_cfg with the sync flag and refresh period of `sync` (absent: off). */
export function withSync(cfg: Buffer, sync: SyncSetting | undefined): Buffer {
  const out = Buffer.from(cfg);
  const flags = CFG.fields.find((f) => f.name === 'flags')!.offset;
  const refresh = CFG.fields.find((f) => f.name === 'sync_refresh_s')!.offset;
  out[flags] = sync?.on ? out[flags]! | ABI.LVS_CFG_F_SYNC : out[flags]! & ~ABI.LVS_CFG_F_SYNC;
  out.writeUInt32LE(sync?.on ? sync.refreshS >>> 0 : 0, refresh);
  return out;
}

export function emptyApplied(): AppliedState {
  return { config: emptyConfig(), allocation: emptyAllocation(), l2: {}, digests: {}, reals: {}, tableSlots: {} };
}

function digest(fingerprint: string, value: Buffer): string {
  return createHash('sha256').update(fingerprint).update(value).digest('hex');
}

/** lvs_reals value without the flags word: what must not change under an established flow. */
function forwardingBytes(hex: string): string {
  const b = Buffer.from(hex, 'hex');
  const flags = REAL.fields.find((f) => f.name === 'flags')!;
  b.fill(0, flags.offset, flags.offset + flags.size);
  return b.toString('hex');
}

/** lvs_reals value of a deleted realserver whose entries wait for it: LVS_REAL_F_GONE only. */
export function goneValue(hex: string): Buffer {
  const b = Buffer.from(hex, 'hex');
  const flags = REAL.fields.find((f) => f.name === 'flags')!;
  b.writeUInt16LE(ABI.LVS_REAL_F_GONE, flags.offset);
  return b;
}

/** lvs_services value of a deleted service's tombstone: its id, no table. */
export function tombstoneValue(svcId: number): Buffer {
  return encodeService({ svcId, tableSlot: 0, tableSize: 0, persistMask: new Uint8Array(16), flags: ABI.LVS_SVC_F_GONE, hashFields: 0 });
}

/** How long (ms) after its deletion a ghost may still have live entries: the longest idle
 *  timeout (entries of a deleted service or realserver are never refreshed), plus the clock's slack. */
export function ghostLifetimeMs(cfg: DirectorConfig): number {
  return Math.max(...timeoutsByState(cfg.settings?.timeouts)) * 1000 + 2000;
}

function emptyGhosts(): Ghosts {
  return { services: {}, reals: {} };
}

/** The ghosts still in their lifetime at `now` (all gone with expire-nodest-conn). */
function liveGhosts(running: AppliedState, desired: DirectorConfig, now: number): Ghosts {
  const g = running.ghosts ?? emptyGhosts();
  if (desired.settings?.expireNodestConn) return emptyGhosts();
  const life = ghostLifetimeMs(desired);
  const keep = <T extends { deletedAt: number }>(r: Record<string, T>) => Object.fromEntries(Object.entries(r).filter(([, v]) => now - v.deletedAt <= life));
  return { services: keep(g.services), reals: keep(g.reals) };
}

/** The data plane's view of a configuration: Tun outer sources filled in. */
function effective(cfg: DirectorConfig, tunnel: PlanInputs['tunnel']): DirectorConfig {
  return { ...cfg, settings: { ...cfg.settings, tunnel: { ...cfg.settings?.tunnel, ...tunnel } } };
}

/**
 * What the running state lets a compile take as it is (see Reuse in compile.ts): nothing when
 * its entries were recorded by another compiler, or when the firewall marks changed (a mark
 * covering a service is part of that service's entry).
 */
function reuseOf(inputs: PlanInputs): Reuse | undefined {
  const { running } = inputs;
  if (inputs.fromScratch || running.compiler !== COMPILER) return undefined;
  if (JSON.stringify(running.config.marks ?? []) !== JSON.stringify(inputs.desired.marks ?? [])) return undefined;
  return {
    services: liveServices(running), hops: hopsOf(inputs), allocation: running.allocation, reals: running.reals, digests: running.digests, l2: running.l2,
    ...(inputs.kept ? { kept: inputs.kept } : {}),
  };
}

/** The next hops of a plan: those resolved, and the running ones of the services kept whole. */
function hopsOf(inputs: PlanInputs): ReadonlyMap<string, L2Next> {
  const { l2, kept, running } = inputs;
  if (!kept?.size) return l2;
  return { get: (id: string) => l2.get(id) ?? running.l2[id] } as ReadonlyMap<string, L2Next>;
}

/**
 * Compiles the target, keeping every slot the running tables use (see compileDirector) and
 * giving ghosts (`ghosts`: those still in their lifetime) back to their own service / realserver.
 */
export function compileTarget(inputs: PlanInputs, ghosts: Ghosts = emptyGhosts()): CompiledDirector {
  const { running, limits } = inputs;
  const cfg = effective(inputs.desired, inputs.tunnel);
  const hops = hopsOf(inputs);
  const resolver: MacResolver = (s, r) => hops.get(realId(s, r));
  if (inputs.allocation) return compileDirector(cfg, resolver, limits, inputs.allocation);
  const reuse = reuseOf(inputs);
  // What the running tables still name is not handed out again in this change; ghosts' ids
  // only when nothing else is free.
  const reserved = {
    services: lazySet(() => Object.values(running.allocation.services)),
    reals: lazySet(() => Object.values(running.allocation.reals).map((x) => x.index)),
    ghostServices: new Map(Object.values(ghosts.services).map((g) => [g.svcId, g.deletedAt] as const)),
    ghostReals: new Map(Object.values(ghosts.reals).map((g) => [g.index, g.deletedAt] as const)),
  };
  // The running allocation, with the ghosts' under it (read only: without ghosts, as it is).
  const under = <V>(ghostly: [string, V][], live: Record<string, V>): Record<string, V> => (ghostly.length ? { ...Object.fromEntries(ghostly), ...live } : live);
  const prev: Allocation = {
    services: under(Object.entries(ghosts.services).map(([id, g]) => [id, g.svcId]), running.allocation.services),
    reals: under(Object.entries(ghosts.reals).map(([id, g]) => [id, { index: g.index, gen: g.gen }]), running.allocation.reals),
    nextGen: running.allocation.nextGen,
  };
  let compiled = compileDirector(cfg, resolver, limits, prev, reserved, reuse);
  // A realserver whose forwarding data changes (MAC, method, egress) gets a fresh slot and
  // generation: its flows are rescheduled instead of seeing a half-rewritten slot. A ghost
  // comes back into its slot only with the forwarding data it had.
  const before = (id: string) => running.reals[id] ?? ghosts.reals[id]?.value;
  const moved = (compiled.fresh ?? compiled.reals).filter((r) => {
    if (r.reused) return false; // recorded with this very value
    const was = before(r.id);
    if (!was) return false;
    const now = r.value.toString('hex');
    // The same value (most realservers of a change): the same forwarding data.
    return was !== now && forwardingBytes(was) !== forwardingBytes(now);
  });
  if (moved.length) {
    const alloc: Allocation = { ...prev, reals: { ...prev.reals } };
    for (const r of moved) delete alloc.reals[r.id];
    compiled = compileDirector(cfg, resolver, limits, alloc, reserved, reuse);
  }
  return compiled;
}

/** VIP filter words of a set of lvs_services keys. */
function filterWordsOf(keys: Iterable<Buffer>): Map<number, bigint> {
  const list: { addr: Uint8Array; port: number }[] = [];
  for (const k of keys) {
    const d = decode(SVC_KEY, k);
    if (d.proto === ABI.LVS_PROTO_FWMARK) continue; // a mark's service has no VIP: classified, not filtered
    list.push({ addr: d.addr as Uint8Array, port: d.port as number });
  }
  return vipFilterWords(list);
}

/** Filter words to write to go from `from` to `to` (every word that differs). */
export function filterStep(from: ReadonlyMap<number, bigint>, to: ReadonlyMap<number, bigint>): Step | undefined {
  const words: [number, Buffer][] = [];
  for (const w of [...new Set([...from.keys(), ...to.keys()])].sort((a, b) => a - b)) {
    const v = to.get(w) ?? 0n;
    if ((from.get(w) ?? 0n) !== v) words.push([w, vipWordValue(v)]);
  }
  return words.length ? { op: 'vip-filter', words } : undefined;
}

/** lvs_cfg with the VIP filter switched on (callers write it only once the filter is complete). */
export function settingsWithFilter(cfg: Buffer): Buffer {
  const out = Buffer.from(cfg);
  const at = CFG.fields.find((f) => f.name === 'flags')!.offset;
  out[at] = out[at]! | ABI.LVS_CFG_F_VIP_FILTER;
  return out;
}

/**
 * The plan that takes the maps from `inputs.running` to `inputs.desired`. Only what changed is
 * written: a service whose table and entry digests are unchanged is not touched.
 */
export function buildPlan(inputs: PlanInputs): Plan {
  const { running } = inputs;
  const now = inputs.now ?? 0;
  const nodest = inputs.desired.settings?.expireNodestConn ?? false;
  const sync = inputs.sync ?? running.sync;
  // Ghosts still in their lifetime (a replay keeps the interrupted plan's target and allocation).
  const alive = inputs.allocation ? (running.ghosts ?? emptyGhosts()) : liveGhosts(running, inputs.desired, now);
  const compiled = compileTarget(inputs, alive);
  const tableSlots: Record<string, number> = {};
  const steps: Step[] = [];
  // The running services by id, looked up only for what the change touches (their lvs_services
  // keys and lvs_dests values are encoded again from them).
  let byId: Map<string, VirtualService> | undefined;
  const runningService = (id: string): VirtualService | undefined => (byId ??= new Map(running.config.services.map((x) => [serviceId(x), x] as const))).get(id);
  const runningKeys = { get: (id: string): Buffer | undefined => { const x = runningService(id); return x && serviceKey(x); } };
  // What the compile took from the running state (see Reuse) keeps its ids, slots and indexes,
  // which no other running service or realserver and no ghost holds: only what it compiled anew
  // ("fresh") can have taken an id, slot or index that went, and only the running services it
  // did not take ("touched") can have gone.
  const freshSvcs = compiled.services.filter((x) => x.digest === undefined);
  const freshReals = compiled.fresh ?? compiled.reals.filter((r) => !r.reused);
  const realCount = compiled.realCount ?? compiled.reals.length;
  const hops = hopsOf(inputs);
  const reusedIds = new Set(compiled.services.filter((x) => x.digest !== undefined).map((x) => x.id));
  const touchedOld = Object.keys(running.allocation.services).filter((id) => !reusedIds.has(id));
  const liveSvc = new Set(freshSvcs.map((x) => x.id));
  const liveSvcIds = new Set(freshSvcs.map((x) => x.svcId));
  const liveReal = new Set(freshReals.map((r) => r.id));
  const liveIndexes = new Set(freshReals.map((r) => r.index));
  /** The running realservers of the touched services: `serviceId/rip` -> allocation. */
  const touchedReals: [string, { index: number; gen: number }][] = [];
  for (const id of touchedOld) {
    for (const r of runningService(id)?.realservers ?? []) {
      const rid = `${id}/${realserverKey(r)}`;
      const a = running.allocation.reals[rid];
      if (a) touchedReals.push([rid, a]);
    }
  }

  // Ghosts after this change: the surviving old ones not back and not evicted (their id or slot
  // taken by something else), plus what this change deletes (unless expire-nodest-conn).
  const ghosts = emptyGhosts();
  for (const [id, g] of Object.entries(alive.services)) {
    if (!liveSvc.has(id) && !liveSvcIds.has(g.svcId)) ghosts.services[id] = g;
  }
  for (const [id, g] of Object.entries(alive.reals)) {
    if (!liveReal.has(id) && !liveIndexes.has(g.index)) ghosts.reals[id] = g;
  }
  const removed = touchedOld.filter((id) => !liveSvc.has(id));
  const tombstones: ServiceWrite[] = [];
  const gone: RealWrite[] = [];
  if (!nodest) {
    for (const id of removed) {
      const svcId = running.allocation.services[id]!;
      if (liveSvcIds.has(svcId)) continue; // taken by a new service at once (maps full)
      const key = runningKeys.get(id)!;
      ghosts.services[id] = { svcId, key: key.toString('hex'), deletedAt: now };
      tombstones.push({ service: id, key, value: tombstoneValue(svcId) });
    }
    for (const [id, a] of touchedReals) {
      if (liveReal.has(id) || liveIndexes.has(a.index) || !running.reals[id]) continue;
      const value = goneValue(running.reals[id]!);
      ghosts.reals[id] = { index: a.index, gen: a.gen, value: value.toString('hex'), deletedAt: now };
      gone.push({ id, index: a.index, value });
    }
  }
  const ghostKeys = (g: Ghosts) => Object.values(g.services).map((x) => Buffer.from(x.key, 'hex'));

  // The records the change leaves as they are stay the running ones (the same objects): the
  // snapshot packs an object it packed or read before from those bytes (snapshot.ts).
  // (A reused realserver's next hop is the running one: compile.ts checks it.)
  const sameAlloc = (a: { index: number; gen: number }, b: { index: number; gen: number }) => a.index === b.index && a.gen === b.gen;
  // The same services in the same order as the running records (most changes): the digest and
  // table-slot records are the running ones with what changed set (a clone instead of a thousand
  // entries made), and only the services compiled anew are looked at. (From scratch: the records
  // made whole, which the tests compare this with.)
  const inOrder = !inputs.fromScratch && !!running.tableSlots && !!running.staleSpares && sameOrder(compiled.services, running);
  const l2Of = (list: readonly CompiledReal[]) => list.map((r) => [r.id, hops.get(r.id)!] as [string, L2Next]).filter(([, v]) => v !== undefined);
  const freshL2 = l2Of(freshReals);
  const allocServices = kept(running.allocation.services, compiled.services.length, freshSvcs.map((x) => [x.id, x.svcId]), (a, b) => a === b, () => compiled.allocation.services);
  const allocReals = kept(running.allocation.reals, realCount, freshReals.map((r) => [r.id, r]), sameAlloc, () => compiled.allocation.reals);
  const target: AppliedState = {
    config: inputs.desired,
    allocation: allocServices === running.allocation.services && allocReals === running.allocation.reals && compiled.allocation.nextGen === running.allocation.nextGen
      ? running.allocation : { services: allocServices, reals: allocReals, nextGen: compiled.allocation.nextGen },
    l2: kept(running.l2, realCount - freshReals.length + freshL2.length, freshL2, sameL2, () => Object.fromEntries(l2Of(compiled.reals))),
    digests: inOrder ? digestsOver(running.digests, freshSvcs) : Object.fromEntries(compiled.services.map((s) => [s.id, s.digest ?? digest(s.fingerprint, s.value(0))])),
    reals: kept(running.reals, realCount, freshReals.map((r) => [r.id, r.value.toString('hex')]), (a, b) => a === b,
      () => Object.fromEntries(compiled.reals.map((r) => [r.id, r.hex ?? r.value.toString('hex')]))),
    tableSlots,
    tunnel: inputs.tunnel,
    ...(Object.keys(ghosts.services).length || Object.keys(ghosts.reals).length ? { ghosts } : {}),
    ...(sync ? { sync } : {}),
    compiler: COMPILER,
  };
  // The VIP filter is a function of the keys of the services and tombstones: when the services
  // the change compiled anew and the tombstones have the keys of those they replace, no word
  // changes (a weight at a thousand services decodes no key).
  const sameKeys = !inputs.fromScratch && sameSet(
    [...touchedOld.map((id) => runningKeys.get(id)?.toString('hex') ?? `?${id}`), ...Object.values(running.ghosts?.services ?? {}).map((g) => g.key)],
    [...freshSvcs.map((x) => x.key.toString('hex')), ...Object.values(ghosts.services).map((g) => g.key)],
  );
  const oldWords = sameKeys ? new Map<number, bigint>() : filterWordsOf([...Object.keys(running.allocation.services).map((id) => {
    const k = runningKeys.get(id);
    if (!k) throw new Error(`internal: the running allocation names ${id}, the running configuration does not`);
    return k;
  }), ...ghostKeys(running.ghosts ?? emptyGhosts())]);
  const newWords = sameKeys ? oldWords : filterWordsOf([...compiled.services.map((s) => s.key), ...ghostKeys(ghosts)]);
  const union = new Map(oldWords);
  for (const [w, v] of newWords) union.set(w, (union.get(w) ?? 0n) | v);
  const widen = filterStep(oldWords, union);
  if (widen) steps.push(widen);

  // lvs_cfg only when it changes: a change to one service writes that service's maps only.
  const settings = withSync(settingsWithFilter(compiled.cfg), sync);
  target.settings = settings.toString('hex');
  if (running.settings !== target.settings) steps.push({ op: 'settings', value: settings });
  // Egress interfaces of realservers reached through another interface (XDP_REDIRECT); the
  // attached interfaces are added by attach.
  // (A reused realserver's egress is a running one.)
  let egress: Set<number> | undefined;
  const tx = new Set<number>();
  for (const r of freshReals) {
    const ifindex = hops.get(r.id)?.ifindex;
    egress ??= ifindex ? new Set(Object.values(running.l2).map((x) => x.ifindex).filter((i): i is number => !!i)) : undefined;
    if (ifindex && !egress!.has(ifindex)) tx.add(ifindex);
  }
  if (tx.size) steps.push({ op: 'tx-ports', ifindexes: [...tx].sort((a, b) => a - b) });

  // Slots that start life in this change: statistics zeroed before anything refers to them.
  const zeroServices: number[] = [];
  const zeroReals: number[] = [];
  const reals: RealWrite[] = [];
  // The running lvs_dests value of a realserver, re-encoded from the running configuration.
  const runningDest = (id: string): string | undefined => {
    const { service, rip } = splitRealId(id);
    const rs = runningService(service)?.realservers.find((x: Realserver) => realserverKey(x) === rip);
    return rs && encodeDest(rs).toString('hex');
  };
  // A reused realserver has the slot, value and weight it runs with: nothing to write.
  for (const r of freshReals) {
    const old = running.allocation.reals[r.id];
    const fresh = !old || old.index !== r.index || old.gen !== r.gen;
    if (fresh) zeroReals.push(r.index);
    if (fresh || running.reals[r.id] !== r.value.toString('hex') || runningDest(r.id) !== r.dest.toString('hex')) {
      reals.push({ id: r.id, index: r.index, value: r.value, fresh, dest: r.dest });
    }
  }
  const fills: TableFill[] = [];
  const switches: ServiceWrite[] = [];
  const retire: number[] = [];
  // Services whose spare slot may hold a previous table (every one, when the running state does
  // not say): those switched by the last change that filled tables.
  const stale = running.staleSpares ? new Set(running.staleSpares) : undefined;
  const fill = (s: CompiledService, liveSlot: number | undefined, slots: Record<string, number>): void => {
    if (running.allocation.services[s.id] !== s.svcId) zeroServices.push(s.svcId);
    const spare = liveSlot === s.svcId * 2 ? s.svcId * 2 + 1 : s.svcId * 2;
    slots[s.id] = spare;
    fills.push({ service: s.id, svcId: s.svcId, slot: spare });
    switches.push({ service: s.id, key: s.key, value: s.value(spare) });
  };
  if (inOrder) {
    // Every service keeps its live slot but those whose digest changed (only compiled ones can);
    // the stale spares of the others are retired, in the services' order.
    const slots = { ...running.tableSlots! };
    const switched = new Set<string>();
    for (const s of freshSvcs) {
      if (running.digests[s.id] === target.digests[s.id]) continue;
      switched.add(s.id);
      fill(s, running.tableSlots![s.id], slots);
    }
    const ids = keysOf(running.digests);
    const at = running.staleSpares!.length > 32 ? new Map(ids.map((id, i) => [id, i] as const)) : undefined;
    const kept = running.staleSpares!.filter((id) => !switched.has(id)).map((id) => [at ? at.get(id)! : ids.indexOf(id), running.tableSlots![id]!] as const);
    for (const [, slot] of kept.sort((a, b) => a[0] - b[0])) retire.push(slot);
    target.tableSlots = slots;
  } else {
    for (const s of compiled.services) {
      const liveSlot = running.tableSlots?.[s.id];
      const unchanged = running.digests[s.id] === target.digests[s.id] && liveSlot !== undefined;
      if (unchanged) {
        tableSlots[s.id] = liveSlot;
        if (!stale || stale.has(s.id)) retire.push(liveSlot);
        continue;
      }
      fill(s, liveSlot, tableSlots);
    }
  }
  if (zeroServices.length || zeroReals.length) steps.push({ op: 'zero', services: zeroServices, reals: zeroReals });
  if (reals.length) steps.push({ op: 'reals', writes: reals });
  // A switched service's previous table stays in its spare slot: a packet that read the old entry
  // may still be looking it up, and freeing it safely would cost an RCU grace period (~15 ms) of
  // its own. A later change's fill batch (one grace period anyway) points the spare slots of the
  // services it leaves alone at their live tables instead: their switches were earlier changes,
  // and the previous tables are freed. The writer skips slots that hold no other table.
  if (fills.length) steps.push({ op: 'tables', fills, ...(retire.length ? { retire } : {}) });
  // After this change, the spares of the services it switched hold their previous tables (a
  // change without fills retires nothing: the stale ones stay stale).
  const staleAfter = fills.length ? fills.map((f) => f.service) : running.staleSpares?.filter((id) => target.digests[id] !== undefined);
  if (staleAfter) target.staleSpares = staleAfter;
  // Tombstones that go (time up, expire-nodest-conn, id taken), before any entry takes their
  // place in lvs_services (a full hash map refuses new keys). One that is this change's
  // service again is overwritten by its switch instead.
  const buried = Object.entries(running.ghosts?.services ?? {}).filter(([id]) => !ghosts.services[id] && !liveSvc.has(id));
  if (buried.length) steps.push({ op: 'remove', services: buried.map(([id, g]) => ({ service: id, key: Buffer.from(g.key, 'hex') })) });
  if (switches.length) steps.push({ op: 'switch', writes: switches });
  // A bulk change (a restore, a new configuration) would leave a previous table beside every
  // live one until the next change: freed at once instead, for one more grace period, which a
  // change of this size does not notice. (Its services stay in staleSpares: a crash before this
  // step leaves them for the next change; the writer skips spares that already hold the live table.)
  if (fills.length >= BULK_RETIRE) steps.push({ op: 'retire', slots: fills.map((f) => f.slot) });
  const marks = markStep(compileMarkEntries(running.config).maps, compiled.marks);
  if (marks) steps.push(marks);

  // Removals, now that no table names them.
  if (tombstones.length) steps.push({ op: 'tombstones', writes: tombstones });
  const dropped = removed.filter((id) => !ghosts.services[id]);
  if (dropped.length) steps.push({ op: 'remove', services: dropped.map((id) => ({ service: id, key: runningKeys.get(id)! })) });
  if (removed.length) {
    const slots = removed.map((id) => running.allocation.services[id]!).filter((svcId) => !liveSvcIds.has(svcId)).flatMap((svcId) => [svcId * 2, svcId * 2 + 1]);
    if (slots.length) steps.push(slots.length >= BULK_RETIRE ? { op: 'park-tables', slots } : { op: 'free-tables', slots });
  }
  // A deleted realserver's slot: its flows wait for it (dropped, drop_real_gone).
  if (gone.length) steps.push({ op: 'gone-reals', writes: gone.sort((a, b) => a.index - b.index) });
  const goneIndexes = new Set(gone.map((g) => g.index));
  const ghostIndexes = new Set(Object.values(ghosts.reals).map((g) => g.index));
  const emptied = [
    ...touchedReals.map(([, a]) => a.index),
    ...Object.values(running.ghosts?.reals ?? {}).map((g) => g.index),
  ];
  const cleared = [...new Set(emptied)].filter((i) => !liveIndexes.has(i) && !goneIndexes.has(i) && !ghostIndexes.has(i)).sort((a, b) => a - b);
  // An emptied slot: flows still pointing at it are rescheduled (conn_real_gone).
  if (cleared.length) steps.push({ op: 'clear-reals', indexes: cleared });
  const narrow = filterStep(union, newWords);
  if (narrow) steps.push(narrow);
  return { target, steps, compiled };
}

/** The lvs_fwmarks writes from the entries `from` to `to`. */
export function markStep(from: readonly { key: Buffer; value: Buffer }[], to: readonly { key: Buffer; value: Buffer }[]): Step | undefined {
  const old = new Map(from.map((e) => [e.key.toString('hex'), e.value.toString('hex')] as const));
  const want = new Set(to.map((e) => e.key.toString('hex')));
  const put = to.filter((e) => old.get(e.key.toString('hex')) !== e.value.toString('hex'));
  const remove = from.filter((e) => !want.has(e.key.toString('hex'))).map((e) => e.key);
  return put.length || remove.length ? { op: 'marks', put, remove } : undefined;
}

/**
 * Steps that write existing ghosts again into empty maps (an upgrade rebuilding the configuration
 * maps): tombstones, gone realserver slots, and the VIP filter words of the live services and the
 * tombstones together (the plan that rebuilt the live services wrote only theirs).
 */
export function ghostSteps(ghosts: Ghosts | undefined, liveKeys: readonly Buffer[]): Step[] {
  const steps: Step[] = [];
  const g = ghosts ?? emptyGhosts();
  const tombstones = Object.entries(g.services).map(([id, t]) => ({ service: id, key: Buffer.from(t.key, 'hex'), value: tombstoneValue(t.svcId) }));
  const gone = Object.entries(g.reals).map(([id, r]) => ({ id, index: r.index, value: Buffer.from(r.value, 'hex') }));
  if (tombstones.length) steps.push({ op: 'tombstones', writes: tombstones });
  if (gone.length) steps.push({ op: 'gone-reals', writes: gone.sort((a, b) => a.index - b.index) });
  const live = filterWordsOf(liveKeys);
  const words = filterWordsOf([...liveKeys, ...tombstones.map((t) => t.key)]);
  const widen = filterStep(live, words);
  if (widen) steps.push(widen);
  return steps;
}

/**
 * The accepted-MAC writes that take lvs_l2_addrs from `current` and lvs_l2_ifs from `held` (both
 * read from the maps; `held` at least for the ifindexes of `current` and `desired`) to `desired`
 * (read from the interfaces): additions and changes first, so a MAC accepted before and after is
 * never missing in between.
 */
export function acceptStep(current: readonly AcceptedMac[], desired: readonly AcceptedMac[], held: ReadonlyMap<number, AcceptedIf>): Step | undefined {
  const key = (a: { ifindex: number; mac: string }) => `${a.ifindex}/${a.mac}`;
  const now = new Map(current.map((a) => [key(a), a]));
  const want = new Set(desired.map(key));
  const put = desired.filter((a) => { const c = now.get(key(a)); return !c || !sameAccepted(c, a); });
  const remove = current.filter((a) => !want.has(key(a))).map((a) => ({ ifindex: a.ifindex, mac: a.mac }));
  const ifs = ifEntries(held, desired);
  return put.length || remove.length || ifs.length ? { op: 'l2-addrs', put, ifs, remove } : undefined;
}

/** What the lvs_services value of a written service says (table slot), for printing. */
function slotOf(value: Buffer): number {
  return decode(SVC, value).table_slot as number;
}

/** One line per step, as `apply --dry-run --steps` prints them. */
export function formatSteps(steps: readonly Step[], tableSize: (service: string) => number | undefined = () => undefined): string {
  const lines = steps.map((s, i) => `${String(i + 1).padStart(3)}. ${s.op.padEnd(11)} ${describeStep(s, tableSize)}`);
  return lines.join('\n');
}

function list(items: string[], max = 6): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')}, ... (${items.length} in all)`;
}

export function describeStep(s: Step, tableSize: (service: string) => number | undefined = () => undefined): string {
  switch (s.op) {
    case 'vip-filter': return `set ${s.words.length} filter word${s.words.length === 1 ? '' : 's'} (${list(s.words.map(([w]) => String(w)))})`;
    case 'settings': {
      const v = s.value.length >= CFG.size ? decode(CFG, s.value) : undefined; // an older layout's, recorded as pending
      const sync = v && (v.flags as number) & ABI.LVS_CFG_F_SYNC ? `; sync events on (refresh ${v.sync_refresh_s as number} s)` : '';
      return `lvs_cfg: timeouts, hash seed, tunnel settings; VIP filter on${sync}`;
    }
    case 'tx-ports': return `egress interfaces ${s.ifindexes.map((i) => `#${i}`).join(' ')}`;
    case 'zero': return `statistics of new slots: ${s.services.length} service${s.services.length === 1 ? '' : 's'}, ${s.reals.length} realserver${s.reals.length === 1 ? '' : 's'}`;
    case 'reals': return `write ${s.writes.length} realserver slot${s.writes.length === 1 ? '' : 's'}: ${list(s.writes.map((w) => `${w.id ?? '?'} -> ${w.index}${w.fresh ? ' (new)' : ''}`), 4)}`;
    case 'tables': return `fill ${s.fills.length} table${s.fills.length === 1 ? '' : 's'}: ${list(s.fills.map((f) => `${f.service} -> slot ${f.slot}${tableSize(f.service) ? ` (${tableSize(f.service)} entries)` : ''}`), 4)}`;
    case 'retire': return `free the previous tables of ${s.slots.length} switched services (their spare slots name the live tables)`;
    case 'switch': return `switch ${s.writes.length} service${s.writes.length === 1 ? ' to its' : 's to their'} new table: ${list(s.writes.map((w) => `${w.service} -> slot ${slotOf(w.value)}`), 4)}`;
    case 'remove': return `delete ${s.services.length} service${s.services.length === 1 ? '' : 's'}: ${list(s.services.map((x) => x.service))}`;
    case 'free-tables': return `free lvs_tables slots ${list(s.slots.map(String), 8)}`;
    case 'park-tables': return `free ${s.slots.length} lvs_tables slots at once (one placeholder table names them all)`;
    case 'clear-reals': return `empty realserver slots ${list(s.indexes.map(String), 8)} (their flows reschedule)`;
    case 'tombstones': return `${s.writes.length} deleted service${s.writes.length === 1 ? '' : 's'} kept as tombstone${s.writes.length === 1 ? '' : 's'} (connections wait): ${list(s.writes.map((w) => w.service))}`;
    case 'gone-reals': return `${s.writes.length} deleted realserver slot${s.writes.length === 1 ? '' : 's'} kept (connections wait): ${list(s.writes.map((w) => `${w.id ?? '?'} -> ${w.index}`), 4)}`;
    case 'marks': return `firewall-mark classification: write ${s.put.length} prefix entr${s.put.length === 1 ? 'y' : 'ies'}, delete ${s.remove.length}`;
    case 'l2-addrs': return `${s.ifs.length ? `interfaces ${list(s.ifs.map((e) => `#${e.ifindex}`), 4)} check ${list(s.ifs.map((e) => String(e.slots.filter(Boolean).length)), 4)} MACs inline${s.ifs.some((e) => e.more) ? ' (more in lvs_l2_addrs)' : ''}; ` : ''}accept ${s.put.length} MAC${s.put.length === 1 ? '' : 's'}${s.put.length ? ` (${list(s.put.map((a) => `#${a.ifindex} ${a.mac} ${a.kind}`), 4)})` : ''}, stop accepting ${s.remove.length}${s.remove.length ? ` (${list(s.remove.map((a) => `#${a.ifindex} ${a.mac}`), 4)})` : ''}`;
  }
}

/** JSON form of the steps (`--steps --json`): values as hex. */
export function stepsJson(steps: readonly Step[]): unknown[] {
  return steps.map((s) => JSON.parse(JSON.stringify(s, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return Buffer.from((v as { data: number[] }).data).toString('hex');
    }
    if (v instanceof Uint32Array) return Array.from(v);
    return v;
  })) as unknown);
}

/** A set of ids built on its first question. */
function lazySet(build: () => number[]): { has(id: number): boolean } {
  let set: Set<number> | undefined;
  return { has: (id) => (set ??= new Set(build())).has(id) };
}

/** Whether two lists hold the same strings, as multisets. */
function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((x, i) => x === sb[i]);
}

/**
 * `base` itself when a record of the target holds what it holds: `count` entries, of which those
 * taken from the running state are base's by construction and the others (`fresh`) equal base's.
 * Otherwise the record `build` makes.
 */
function kept<V>(base: Record<string, V>, count: number, fresh: readonly [string, V][], same: (a: V, b: V) => boolean, build: () => Record<string, V>): Record<string, V> {
  if (fresh.every(([id, v]) => base[id] !== undefined && same(base[id], v)) && keysOf(base).length === count) return base;
  return build();
}

/** Whether the compiled services are the running records' services, in their order. */
function sameOrder(services: readonly CompiledService[], running: AppliedState): boolean {
  const d = keysOf(running.digests);
  const t = keysOf(running.tableSlots!);
  if (d.length !== services.length || t.length !== services.length) return false;
  for (let i = 0; i < services.length; i++) if (services[i]!.id !== d[i] || d[i] !== t[i]) return false;
  return true;
}

/** The running digests with those of the services compiled anew (keys in place: the same order). */
function digestsOver(running: Record<string, string>, fresh: readonly CompiledService[]): Record<string, string> {
  const out = { ...running };
  for (const s of fresh) out[s.id] = digest(s.fingerprint, s.value(0));
  return out;
}

function sameL2(a: L2Next, b: L2Next): boolean {
  return a === b || (a.mac === b.mac && a.smac === b.smac && a.ifindex === b.ifindex);
}
