/**
 * A change as a transaction: resolve its inputs (MACs, routes: slow, so before the lock is
 * taken), build the plan (pure), record it as pending in the snapshot, execute its steps with the
 * map writer while a journal counts the steps written, then commit (the snapshot's applied
 * state becomes the target, the journal goes). A process killed in between leaves the pending
 * plan and the journal; the next command replays the steps that are left.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { realId, type L2Next, type Limits } from '../dataplane/compile.js';
import { serviceId, type DirectorConfig, type Realserver, type VirtualService } from '../model/types.js';
import { familyOf } from '../model/address.js';
import { buildPlan, type Plan } from './plan.js';
import { resolveAll, tunnelSources } from './neigh.js';
import { writeSnapshot, type AppliedState, type Snapshot } from './snapshot.js';
import { faultPoint } from './faults.js';
import type { MapWriter } from './writer.js';
import type { DirectorReader } from './reader.js';
import type { StatePaths } from './paths.js';

/** What a change needs from outside the process: next hops and Tun outer sources. */
export interface Resolved {
  l2: Map<string, L2Next>;
  tunnel: { source4?: string; source6?: string };
  /** Attached interfaces the next hops were resolved for (egress choice depends on them). */
  interfaces: string[];
}

/** Thrown by an offline resolution that would have to ask the kernel (ip, ping). */
export class NeedsResolution extends Error {}

/** A running realserver's next hop is reused when nothing that decides it changed. */
function reusable(running: AppliedState, s: VirtualService, r: Realserver): L2Next | undefined {
  const old = running.config.services.find((x) => serviceId(x) === serviceId(s))?.realservers.find((x) => x.address === r.address);
  if (!old || old.method !== r.method || old.nextHop !== r.nextHop || old.ifname !== r.ifname || old.mac !== r.mac) return undefined;
  return running.l2[realId(s, r)];
}

/**
 * Next hops and Tun sources for `desired`. `earlier`: what a previous (unlocked) resolution
 * found. `offline`: use only what is known (earlier, running, given MACs and sources) and throw
 * NeedsResolution instead of spawning anything; the locked part of a change runs offline.
 */
export function resolveInputs(
  running: AppliedState, desired: DirectorConfig, interfaces: string[],
  opts: { refresh?: boolean; offline?: boolean; earlier?: Resolved },
): Resolved {
  const earlier = opts.earlier && sameList(opts.earlier.interfaces, interfaces) ? opts.earlier : undefined;
  const known = (s: VirtualService, r: Realserver): L2Next | undefined =>
    earlier?.l2.get(realId(s, r)) ?? (opts.refresh ? undefined : reusable(running, s, r));
  if (opts.offline) {
    for (const s of desired.services) {
      for (const r of s.realservers) if (!r.mac && !known(s, r)) throw new NeedsResolution(realId(s, r));
    }
  }
  const l2 = resolveAll(desired.services, interfaces, known);
  const given = desired.settings?.tunnel ?? {};
  let tunnel: Resolved['tunnel'];
  if (opts.offline) {
    tunnel = { ...earlier?.tunnel, ...given };
    for (const s of desired.services) {
      for (const r of s.realservers) {
        if (r.method === 'tun' && !tunnel[familyOf(r.address) === 6 ? 'source6' : 'source4']) throw new NeedsResolution('tunnel source');
      }
    }
  } else {
    tunnel = tunnelSources(desired);
  }
  return { l2, tunnel, interfaces };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function planFor(snap: Snapshot, desired: DirectorConfig, resolved: Resolved, limits: Limits): Plan {
  return buildPlan({
    running: snap.applied, desired, l2: resolved.l2, tunnel: resolved.tunnel, limits, now: Date.now(),
  });
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
  if (from === 0) {
    snap.pending = { target: plan.target, steps, startedAt: new Date().toISOString() };
    writeSnapshot(paths.snapshot, snap);
    faultPoint('pending-written');
  }
  const fd = openSync(journalPath(paths), 'w', 0o600);
  const count = Buffer.alloc(4);
  try {
    count.writeUInt32LE(from);
    writeSync(fd, count, 0, 4, 0);
    writer.execute(steps, {
      from,
      tableOf: (service) => {
        const s = plan.compiled?.services.find((x) => x.id === service);
        if (!s) throw new Error(`internal: the plan has no table for ${service}`);
        return s.table;
      },
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
  writeSnapshot(paths.snapshot, snap);
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
  const rebuilt = buildPlan({
    // The slots the service entries point at now (a legacy record's replay starts from the maps).
    running: { ...snap.applied, tableSlots: p.steps ? snap.applied.tableSlots ?? {} : reader.liveTableSlots(snap.applied) },
    desired: target.config,
    l2: new Map(Object.entries(target.l2)),
    tunnel: target.tunnel ?? tunnelSources(target.config),
    limits,
    allocation: target.allocation,
    now: Date.now(),
  });
  if (p.steps) {
    const plan: Plan = { target, steps: p.steps, compiled: rebuilt.compiled };
    executePlan(paths, snap, plan, writer, { from: Math.min(journaled(paths), plan.steps.length), replay: true });
  } else {
    executePlan(paths, snap, rebuilt, writer, { from: 0, replay: true });
  }
}
