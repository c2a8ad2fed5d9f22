/**
 * A change as a transaction: resolve its inputs (MACs, routes: slow, so before the lock is
 * taken), build the plan (pure), record it as pending in the snapshot, execute its steps with the
 * map writer while a journal counts the steps written, then commit (the snapshot's applied
 * state becomes the target, the journal goes). A process killed in between leaves the pending
 * plan and the journal; the next command replays the steps that are left.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { realId, splitRealId, type L2Next, type Limits } from '../dataplane/compile.js';
import { serviceId, type DirectorConfig, type Realserver, type VirtualService } from '../model/types.js';
import { familyOf } from '../model/address.js';
import { buildPlan, type Plan } from './plan.js';
import { resolveAll, resolveAllAsync, tunnelSources, tunnelSourcesAsync, type Known, type Resolutions } from './neigh.js';
import { writeCommitted, writePending, removePending, type AppliedState, type Snapshot, type UnresolvedReal } from './snapshot.js';
import { faultPoint } from './faults.js';
import { liveServices } from './records.js';
import type { MapWriter } from './writer.js';
import type { DirectorReader } from './reader.js';
import type { StatePaths } from './paths.js';

/** What a change needs from outside the process: next hops and Tun outer sources. */
export interface Resolved {
  l2: Map<string, L2Next>;
  /** Realservers whose next hop does not answer (`serviceId/rip` -> why): installed unresolved. */
  unresolved: Map<string, string>;
  tunnel: { source4?: string; source6?: string };
  /** Attached interfaces the next hops were resolved for (egress choice depends on them). */
  interfaces: string[];
  /** Running services (the same objects) whose realservers keep the next hops the running state
   *  recorded: nothing was asked for them, and `l2` leaves them out (see keptServices). */
  kept?: ReadonlySet<VirtualService>;
}

/** Thrown by an offline resolution that would have to ask the kernel (ip, ping). */
export class NeedsResolution extends Error {}

/** A running realserver's next hop is reused when nothing that decides it changed. */
function reusable(running: AppliedState, s: VirtualService, r: Realserver): L2Next | undefined {
  return sameHop(running, s, r) ? running.l2[realId(s, r)] : undefined;
}

/** The running realservers by `serviceId/rip`, built once per applied state (a change asks for
 *  every realserver of the desired configuration: a scan per question would be quadratic). */
const runningIndex = new WeakMap<AppliedState, Map<string, Realserver>>();
function runningReal(running: AppliedState, id: string): Realserver | undefined {
  let index = runningIndex.get(running);
  if (!index) {
    index = new Map(running.config.services.flatMap((x) => x.realservers.map((r) => [realId(x, r), r] as const)));
    runningIndex.set(running, index);
  }
  return index.get(id);
}

/** Whether what decides a realserver's next hop is as in the running configuration. */
function sameHop(running: AppliedState, s: VirtualService, r: Realserver): boolean {
  // A running service itself (a change elsewhere keeps it, object and all): its realservers too.
  if (liveServices(running).has(s)) return true;
  const old = runningReal(running, realId(s, r));
  return !!old && old.method === r.method && old.nextHop === r.nextHop && old.ifname === r.ifname && old.mac === r.mac;
}

interface ResolveOpts {
  refresh?: boolean; offline?: boolean; earlier?: Resolved;
  /** Ask the realservers installed unresolved again (else they stay unresolved: a change does not wait for them). */
  retryUnresolved?: boolean;
}

/** Services with a realserver installed unresolved, by id, per applied state. */
const unresolvedServices = new WeakMap<AppliedState, Set<string>>();

/**
 * The running services of `desired` (the same objects: a change keeps those it leaves alone)
 * whose every realserver would keep the next hop the running state recorded (`running.l2`): no
 * refresh, none installed unresolved, none resolved anew by an earlier pass. Nothing is asked
 * or looked up for their realservers: a change to one service of a thousand resolves one.
 */
function keptServices(running: AppliedState, desired: DirectorConfig, opts: ResolveOpts, earlier: Resolved | undefined): Set<VirtualService> {
  const kept = new Set<VirtualService>();
  if (opts.refresh) return kept;
  const live = liveServices(running);
  let pending = unresolvedServices.get(running);
  if (!pending) unresolvedServices.set(running, (pending = new Set(Object.keys(running.unresolved ?? {}).map((id) => splitRealId(id).service))));
  const asked = earlier && (earlier.l2.size || earlier.unresolved.size) ? earlier : undefined;
  for (const s of desired.services) {
    if (!live.has(s) || (pending.size && pending.has(serviceId(s)))) continue;
    if (asked && s.realservers.some((r) => { const id = realId(s, r); return asked.l2.has(id) || asked.unresolved.has(id); })) continue;
    kept.add(s);
  }
  return kept;
}

/** What is known without asking the kernel, and what a failed re-resolution falls back to. */
function knowledge(running: AppliedState, desired: DirectorConfig, interfaces: string[], opts: ResolveOpts) {
  const earlier = opts.earlier && sameList(opts.earlier.interfaces, interfaces) ? opts.earlier : undefined;
  const kept = keptServices(running, desired, opts, earlier);
  const known = (s: VirtualService, r: Realserver): Known => {
    const id = realId(s, r);
    const e = earlier?.l2.get(id);
    if (e) return e;
    const u = earlier?.unresolved.get(id);
    if (u !== undefined) return { unresolved: u };
    if (opts.refresh) return undefined;
    // Installed unresolved: asked again only when asked for (Director.resolvePending, a refresh).
    const was = running.unresolved?.[id];
    if (was && !opts.retryUnresolved && sameHop(running, s, r)) return { unresolved: was.problem };
    return reusable(running, s, r);
  };
  if (opts.offline) {
    for (const s of desired.services) {
      if (kept.has(s)) continue;
      for (const r of s.realservers) if (!r.mac && !known(s, r)) throw new NeedsResolution(realId(s, r));
    }
  }
  return { known, kept };
}

/**
 * A next hop that stopped answering on a refresh keeps the one in use: its flows go on, as with
 * IPVS, and a realserver becomes unresolved only when it never answered (or its route changed).
 */
function keepRunning(running: AppliedState, desired: DirectorConfig, res: Resolutions, kept: ReadonlySet<VirtualService>): Resolutions {
  // (Nothing to look at when everything answered: the usual case, at any size.)
  if (res.unresolved.size === 0) return res;
  for (const s of desired.services) {
    if (kept.has(s)) continue;
    for (const r of s.realservers) {
      const id = realId(s, r);
      const old = res.unresolved.has(id) ? reusable(running, s, r) : undefined;
      if (old) {
        res.unresolved.delete(id);
        res.l2.set(id, old);
      }
    }
  }
  return res;
}

function offlineTunnel(desired: DirectorConfig, earlier: Resolved | undefined): Resolved['tunnel'] {
  const tunnel = { ...earlier?.tunnel, ...desired.settings?.tunnel };
  for (const s of desired.services) {
    for (const r of s.realservers) {
      if (r.method === 'tun' && !tunnel[familyOf(r.address) === 6 ? 'source6' : 'source4']) throw new NeedsResolution('tunnel source');
    }
  }
  return tunnel;
}

/**
 * Next hops and Tun sources for `desired`. `earlier`: what a previous (unlocked) resolution
 * found. `offline`: use only what is known (earlier, running, given MACs and sources) and throw
 * NeedsResolution instead of spawning anything; the locked part of a change runs offline.
 * A realserver whose next hop does not answer is returned in `unresolved`, not thrown.
 */
export function resolveInputs(running: AppliedState, desired: DirectorConfig, interfaces: string[], opts: ResolveOpts): Resolved {
  const { known, kept } = knowledge(running, desired, interfaces, opts);
  const res = keepRunning(running, desired, resolveAll(desired.services, interfaces, known, kept), kept);
  const tunnel = opts.offline ? offlineTunnel(desired, opts.earlier) : tunnelSources(desired);
  return { l2: res.l2, unresolved: res.unresolved, tunnel, interfaces, kept };
}

/** resolveInputs without blocking the event loop: every next hop is asked at once. */
export async function resolveInputsAsync(running: AppliedState, desired: DirectorConfig, interfaces: string[], opts: ResolveOpts): Promise<Resolved> {
  const { known, kept } = knowledge(running, desired, interfaces, opts);
  const res = keepRunning(running, desired, await resolveAllAsync(desired.services, interfaces, known, kept), kept);
  const tunnel = opts.offline ? offlineTunnel(desired, opts.earlier) : await tunnelSourcesAsync(desired);
  return { l2: res.l2, unresolved: res.unresolved, tunnel, interfaces, kept };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The MAC an unresolved realserver's slot carries: none a frame could be sent to. */
export const NO_MAC = '00:00:00:00:00:00';

/**
 * What the compiler is given for a configuration with unresolved realservers: each takes no
 * table slots (weight 0, as a quiesced realserver) and its slot carries no usable MAC. The
 * snapshot keeps the configuration as written (weights, for -S) and lists the unresolved ones.
 */
export function compileView(desired: DirectorConfig, l2: ReadonlyMap<string, L2Next>, unresolved: ReadonlySet<string>): { config: DirectorConfig; l2: Map<string, L2Next> } {
  if (unresolved.size === 0) return { config: desired, l2: new Map(l2) };
  const all = new Map(l2);
  for (const id of unresolved) all.set(id, { mac: NO_MAC });
  // Only the services with an unresolved realserver are copied: the others stay the objects
  // they are (a running one's entries are taken from the running state, plan.ts).
  const services = new Set([...unresolved].map((id) => splitRealId(id).service));
  return {
    config: {
      ...desired,
      services: desired.services.map((s) => (services.has(serviceId(s))
        ? { ...s, realservers: s.realservers.map((r) => (unresolved.has(realId(s, r)) ? { ...r, weight: 0 } : r)) } : s)),
    },
    l2: all,
  };
}

/** The plan's target as the snapshot records it: the configuration as written, unresolved ones listed. */
export function recordTarget(plan: Plan, desired: DirectorConfig, unresolved: Record<string, UnresolvedReal> | undefined, drains: AppliedState['drains']): Plan {
  plan.target.config = desired;
  if (unresolved && Object.keys(unresolved).length) {
    plan.target.unresolved = unresolved;
    // A copy: the target's record may be the running state's own (plan.ts kept).
    plan.target.l2 = { ...plan.target.l2 };
    for (const id of Object.keys(unresolved)) delete plan.target.l2[id];
  } else {
    delete plan.target.unresolved;
  }
  if (drains && Object.keys(drains).length) plan.target.drains = drains;
  else delete plan.target.drains;
  return plan;
}

/**
 * The plan taking `snap` to `desired`. `drains`: the manual drains the target records (default:
 * the running ones, of the services and realservers that are still there).
 */
export function planFor(snap: Snapshot, desired: DirectorConfig, resolved: Resolved, limits: Limits, drains?: AppliedState['drains']): Plan {
  const now = new Date().toISOString();
  const was = snap.applied.unresolved ?? {};
  const unresolved: Record<string, UnresolvedReal> = {};
  for (const [id, problem] of resolved.unresolved) unresolved[id] = { problem, since: was[id]?.since ?? now };
  const view = compileView(desired, resolved.l2, new Set(resolved.unresolved.keys()));
  const plan = buildPlan({
    running: snap.applied, desired: view.config, l2: view.l2, tunnel: resolved.tunnel, limits, now: Date.now(), ...(resolved.kept ? { kept: resolved.kept } : {}),
  });
  return recordTarget(plan, desired, unresolved, drains ?? keptDrains(snap.applied.drains, desired));
}

/** Drains of services and realservers that are still configured. */
export function keptDrains(drains: AppliedState['drains'], cfg: DirectorConfig): AppliedState['drains'] {
  const out: NonNullable<AppliedState['drains']> = {};
  if (!drains || Object.keys(drains).length === 0) return out;
  const ids = new Set(cfg.services.map(serviceId));
  const reals = new Set(cfg.services.flatMap((s) => s.realservers.map((r) => realId(s, r))));
  for (const [k, d] of Object.entries(drains ?? {})) {
    if (!ids.has(d.service)) continue;
    if (d.realserver !== undefined && !reals.has(k)) continue;
    out[k] = d;
  }
  return out;
}

function journalPath(paths: StatePaths): string {
  return `${paths.stateDir}/apply.journal`;
}

/** Steps already written by an interrupted apply (0 when the journal is missing or unreadable). */
function journaled(paths: StatePaths): number {
  try {
    const b = readFileSync(journalPath(paths));
    return b.length >= 4 ? b.readUInt32LE(0) : 0;
  } catch {
    return 0;
  }
}

/**
 * Records `plan` as pending, writes its steps from `from` on, and commits. The journal is one
 * 4-byte count rewritten in place after each step: a killed process leaves it in the page cache,
 * and a step written but not yet counted is written again (every step is idempotent).
 */
export function executePlan(
  paths: StatePaths, snap: Snapshot, plan: Plan, writer: MapWriter, opts: { from?: number; replay?: boolean } = {},
): void {
  const steps = plan.steps;
  const from = opts.from ?? 0;
  // The target's records are packed once (snapshot.ts): recorded as pending, then as applied,
  // and those the change left alone are the running state's, packed or read before.
  if (from === 0) {
    snap.pending = { target: plan.target, steps, startedAt: new Date().toISOString() };
    // Beside the snapshot, as what changes against it (snapshot.ts writePending).
    writePending(paths.snapshot, snap);
    faultPoint('pending-written');
  }
  const fd = openSync(journalPath(paths), 'w', 0o600);
  const count = Buffer.alloc(4);
  try {
    count.writeUInt32LE(from);
    writeSync(fd, count, 0, 4, 0);
    const compiled = new Map(plan.compiled?.services.map((s) => [s.id, s] as const));
    writer.execute(steps, {
      from,
      tableOf: (service) => {
        const s = compiled.get(service);
        if (!s) throw new Error(`internal: the plan has no table for ${service}`);
        return s.table;
      },
      // Built one at a time and let go once written: restoring a thousand services never holds
      // a thousand tables.
      tableWritten: (service) => compiled.get(service)?.releaseTable(),
      // A replay may find tables already in place: reading one back is cheaper than swapping it.
      reuseEqualTables: opts.replay ?? false,
      afterStep: (i, step) => {
        faultPoint(`step:${step.op}`);
        count.writeUInt32LE(i + 1);
        writeSync(fd, count, 0, 4, 0);
      },
    });
  } finally {
    closeSync(fd);
  }
  faultPoint('before-commit');
  delete snap.pending;
  snap.applied = plan.target;
  // What changed, beside the snapshot (snapshot.ts writeCommitted), or the whole file again.
  writeCommitted(paths.snapshot, snap);
  removePending(paths.snapshot);
  rmSync(journalPath(paths), { force: true });
  faultPoint('committed');
}

/**
 * Completes an interrupted apply: rebuilds the pending plan's compiled tables from its target
 * (compilation is deterministic and the target records the allocation and next hops), then
 * writes the steps the journal does not count yet. A version 1 pending record has no steps: the
 * plan is rebuilt against the running state and the maps as they are, and written whole.
 */
export function recoverPending(paths: StatePaths, snap: Snapshot, writer: MapWriter, reader: DirectorReader, limits: Limits): void {
  const p = snap.pending!;
  process.stderr.write(`lvs-xdp: completing an apply that was interrupted at ${p.startedAt}\n`);
  const target = p.target;
  const view = compileView(target.config, new Map(Object.entries(target.l2)), new Set(Object.keys(target.unresolved ?? {})));
  const rebuilt = recordTarget(buildPlan({
    // The slots the service entries point at now (a legacy record's replay starts from the maps).
    running: { ...snap.applied, tableSlots: p.steps ? snap.applied.tableSlots ?? {} : reader.liveTableSlots(snap.applied) },
    desired: view.config,
    l2: view.l2,
    tunnel: target.tunnel ?? tunnelSources(target.config),
    limits,
    allocation: target.allocation,
    now: Date.now(),
    ...(target.sync ? { sync: target.sync } : {}),
  }), target.config, target.unresolved, target.drains);
  if (p.steps) {
    const plan: Plan = { target, steps: p.steps, compiled: rebuilt.compiled };
    executePlan(paths, snap, plan, writer, { from: Math.min(journaled(paths), plan.steps.length), replay: true });
  } else {
    executePlan(paths, snap, rebuilt, writer, { from: 0, replay: true });
  }
}
