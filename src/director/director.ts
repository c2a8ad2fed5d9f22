/**
 * A running director: the pinned program, maps and links under the pin directory plus the
 * snapshot beside them. Every CLI call is a separate process that opens the director from
 * there; the library API (`import { Director } from 'lvs-xdp'`) is this class.
 *
 * This class is a facade over three modules: the lifecycle (lifecycle.ts: attach, detach, pins
 * and links), the write path (plan.ts builds a change as data, transaction.ts records and commits
 * it, writer.ts is the only code that writes the maps) and the reader (reader.ts: counters,
 * statistics, connections, tables). Mutations hold a lock, so two processes at once are
 * serialized; nothing slow (neighbour resolution, process spawns) runs while it is held.
 */
import { statSync } from 'node:fs';
import { translateNativeError, NotAttachedError, StateError, ConfigError } from '../errors.js';
import { DIRECTOR_MAPS, type DirectorSizes } from '../dataplane/loader.js';
import { realId, type L2Next } from '../dataplane/compile.js';
import { ifName } from '../native/index.js';
import { validateConfig } from '../model/validate.js';
import { type DirectorConfig, type VirtualService, type Realserver, type TimeoutSettings, serviceId } from '../model/types.js';
import { applyCommands, type IpvsadmCommand } from '../ipvsadm/index.js';
import { diffConfig, tableMovesFor, formatDiff } from '../diff/index.js';
import { existsSync } from 'node:fs';
import { statePaths, type StatePaths } from './paths.js';
import { readSnapshot, pendingPath, deltaPath, type Snapshot } from './snapshot.js';
import {
  withLock, attachLocked, detachLocked, forceDetachLocked, removeStateDir, linkStatus, assertBpffs, syncAcceptedLocked,
  type DetachResult,
} from './lifecycle.js';
import { readLinks } from './neigh.js';
import { acceptedSet, type AcceptedMac } from '../dataplane/l2addrs.js';
import { buildPlan, type Step, type SyncSetting } from './plan.js';
import { MapWriter } from './writer.js';
import { DirectorReader } from './reader.js';
import { tablesDigest, type TableDigest } from './digest.js';
import {
  resolveInputs, resolveInputsAsync, planFor, executePlan, recoverPending, keptDrains, compileView, recordTarget, NeedsResolution, type Resolved,
} from './transaction.js';
import { overlayDrains, addDrain, removeDrain, drainsFromCommands, type Drains, type DrainScope } from './drain.js';
import type {
  DirectorOptions, AttachOptions, ApplyOptions, ApplyResult, DirectorStatus, InterfaceStatus, StatsSample, ConnectionInfo, RealserverNote,
  MapMemory,
} from './types.js';
import { directorStatus, mapMemory, notes, sameKeys } from './status.js';
import { assertRunsThisAbi, upgrade, type UpgradeOptions, type UpgradeResult } from './upgrade.js';
import { SyncInserter, type SyncInsertOptions, type SyncInsertResult } from '../sync/insert.js';
import type { SyncConn } from '../sync/proto.js';

export type * from './types.js';
export type { UpgradeResult, MapAction } from './upgrade.js';
export type { DrainScope } from './drain.js';

export { STATE_NAMES } from '../abi/generated.js';

/** Limits the loaded maps impose; enforced before anything is written. */
function limitsOf(snap: Snapshot): { maxServices: number; maxReals: number; maxTableSize: number } {
  return { maxServices: snap.sizes.maxServices, maxReals: snap.sizes.maxReals, maxTableSize: 131071 };
}

export class Director {
  private readonly writer: MapWriter;
  private readonly reader: DirectorReader;
  /** Inode and mtime of the snapshot last read: each write renames a new file into place. */
  private snapStamp = '';
  /** Connection sync's lookups, for the applied configuration they were built from. */
  private syncInserter: SyncInserter | undefined;

  private constructor(readonly paths: StatePaths, private snap: Snapshot) {
    this.writer = MapWriter.fromPins(paths.pinDir);
    this.reader = new DirectorReader(this.writer.maps);
  }

  /** Whether a director is running (its snapshot exists) for these paths. */
  static exists(opts: DirectorOptions = {}): boolean {
    const p = statePaths(opts).snapshot;
    try {
      statSync(p);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw translateNativeError(e, { action: `read ${p}`, path: p });
    }
  }

  /** Opens the running director; NotAttachedError when there is none. */
  static open(opts: DirectorOptions = {}): Director {
    const paths = statePaths(opts);
    assertBpffs(paths);
    // Stamped before it is read: the first fresh() does not decode the same file again (a write
    // in between changes the stamp, so it is read then).
    const stamp = snapshotStamp(paths);
    const snap = readSnapshot(paths.snapshot);
    if (!snap) {
      throw new NotAttachedError(`no director is attached (no state at ${paths.snapshot})`, {
        hint: 'attach one with `lvs-xdp attach IFACE`; a director in another network namespace or pin directory needs --pin-dir / LVS_XDP_PIN_DIR',
      });
    }
    // Another version's director has other maps: `upgrade` is the way, not "maps missing".
    assertRunsThisAbi(paths, snap);
    for (const m of DIRECTOR_MAPS) {
      if (!existsSync(`${paths.pinDir}/${m}`)) {
        throw new StateError(`pinned map ${paths.pinDir}/${m} is missing although ${paths.snapshot} exists`, {
          hint: 'the pinned state was removed behind lvs-xdp\'s back: `lvs-xdp detach` cleans up, then attach again',
        });
      }
    }
    const d = new Director(paths, snap);
    d.snapStamp = stamp;
    return d;
  }

  /**
   * This build's data plane takes over the running director (another version's, or the same
   * ABI with other code), keeping its configuration and connection table, or refuses before
   * anything changes (src/director/upgrade.ts). Completes an upgrade that was interrupted.
   */
  static async upgrade(opts: DirectorOptions & UpgradeOptions = {}): Promise<UpgradeResult> {
    return upgrade(statePaths(opts), limitsOf, opts);
  }

  /**
   * Attaches the director to an interface: loads and pins the program and maps on first use,
   * or attaches the running program to one more interface. Refuses an interface that already
   * has another XDP program unless `force`.
   */
  static async attach(ifname: string, opts: AttachOptions = {}): Promise<Director> {
    const paths = statePaths(opts);
    assertBpffs(paths);
    const fresh = !existsSync(paths.stateDir);
    const out: { reattachedFrom?: number } = {};
    // The links (MACs, uppers) are read before the lock: nothing slow runs under it.
    const links = readLinks();
    let snap: Snapshot;
    try {
      snap = await withLock(paths, () => attachLocked(paths, ifname, opts, links, out));
    } catch (e) {
      // A refused attach leaves nothing behind: not even the state directory it made for its lock.
      if (fresh && !existsSync(paths.snapshot)) removeStateDir(paths);
      throw e;
    }
    const d = new Director(paths, snap);
    // Realservers sent out through an interface that came back under a new ifindex: their
    // egress is resolved again (everything else of the running configuration stands).
    const from = out.reattachedFrom;
    if (from !== undefined && from !== snap.interfaces[ifname]?.ifindex && Object.values(snap.applied.l2).some((x) => x.ifindex === from)) {
      await d.apply(d.config, { refresh: true });
    }
    return d;
  }

  /**
   * Attach and apply, all or nothing: when the configuration cannot be applied (a file that
   * does not validate, a realserver whose MAC does not resolve), the interface is detached
   * again (and a first attach leaves no state behind), then the error is thrown.
   * `desired` gets the running configuration (a rules file keeps the running settings).
   */
  static async attachWith(
    ifname: string, desired: (running: DirectorConfig) => DirectorConfig, opts: AttachOptions & ApplyOptions = {},
  ): Promise<{ director: Director; result: ApplyResult }> {
    const d = await Director.attach(ifname, opts);
    try {
      const result = await d.apply(desired(d.config), { refresh: opts.refresh ?? false });
      return { director: d, result };
    } catch (e) {
      try {
        await d.detach(ifname);
      } finally {
        d.close();
      }
      throw e;
    }
  }

  /**
   * Detach when the state cannot be opened (corrupt, foreign or newer snapshot, a pinned map
   * removed by hand): works from the pinned links alone (lifecycle.ts).
   */
  static async forceDetach(opts: DirectorOptions = {}, ifname?: string): Promise<DetachResult> {
    const paths = statePaths(opts);
    assertBpffs(paths);
    const r = await withLock(paths, () => forceDetachLocked(paths, ifname));
    if (r.removed) removeStateDir(paths);
    return r;
  }

  /**
   * Re-reads the snapshot when another process changed it since (a long-lived Director, e.g.
   * `lvs-xdp run` or an embedding daemon, sees changes made with the CLI).
   */
  private fresh(): Snapshot {
    try {
      const stamp = this.stamp();
      if (stamp !== this.snapStamp) {
        const s = readSnapshot(this.paths.snapshot);
        if (s) this.adopt(s);
        this.snapStamp = stamp;
      }
    } catch {
      // detached meanwhile: keep what we have; map operations will say so
    }
    return this.snap;
  }

  private stamp(): string {
    return snapshotStamp(this.paths);
  }

  /** The L2 next hop the data plane sends a service's realserver to (DR: its MAC; Tun: the next hop's). */
  nextHop(svc: Pick<VirtualService, 'protocol' | 'vip' | 'port'>, rs: Pick<Realserver, 'address'>): L2Next | undefined {
    return this.fresh().applied.l2[realId(svc, rs)];
  }

  /** The configuration the data plane runs. */
  get config(): DirectorConfig {
    return this.fresh().applied.config;
  }

  /** When the snapshot was last written (ISO): the age of what it says was applied. */
  get updatedAt(): string {
    return this.fresh().updatedAt;
  }

  get sizes(): DirectorSizes {
    return this.snap.sizes;
  }

  get interfaces(): string[] {
    return Object.keys(this.snap.interfaces);
  }

  /**
   * LVS-NAT realservers sent out through an interface lvs-xdp is not attached to: their replies
   * come back there, where no program translates them (and the forward redirect has no port).
   * One line per such interface, naming it and its realservers.
   */
  get natUnattached(): { ifindex: number; ifname: string; realservers: string[] }[] {
    const snap = this.fresh();
    return natUnattachedOf(snap.applied.config, snap.applied.l2, Object.values(snap.interfaces).map((i) => i.ifindex));
  }

  close(): void {
    this.writer.close();
  }

  /** Detaches from `ifname` (or every interface); the last one removes every pinned object and the snapshot. */
  async detach(ifname?: string): Promise<DetachResult> {
    // Before the lock, like attach: the remaining interfaces' set is computed under it from these.
    const links = readLinks();
    const r = await withLock(this.paths, () => {
      const res = detachLocked(this.paths, this.snap, links, ifname);
      if (!res.removed) this.snap = readSnapshot(this.paths.snapshot) ?? this.snap;
      return res;
    });
    if (r.removed) {
      this.close();
      removeStateDir(this.paths);
    }
    return r;
  }

  /** When an apply was interrupted (process killed): its start time, until repaired. */
  get interruptedApply(): string | undefined {
    return this.snap.pending?.startedAt;
  }

  /**
   * Completes an interrupted apply (the steps its journal does not count yet; each service is
   * switched in one step, so the data plane ran the old or the new table of each service, never
   * a mix). Returns whether there was anything to repair.
   */
  async repair(): Promise<boolean> {
    return withLock(this.paths, () => {
      const snap = this.lockedSnapshot();
      if (!snap.pending) return false;
      recoverPending(this.paths, snap, this.writer, this.reader, limitsOf(snap));
      return true;
    });
  }

  /** Re-reads the snapshot under the lock (another process may have changed it). */
  private lockedSnapshot(): Snapshot {
    // The file this process read last, unchanged (every write renames a new file into place):
    // not decoded again. One it left pending in memory only (a failed write) is read back.
    const stamp = this.stamp();
    if (stamp !== '' && stamp === this.snapStamp && !this.snap.pending) return this.snap;
    const s = readSnapshot(this.paths.snapshot);
    if (!s) throw new NotAttachedError('the director was detached meanwhile');
    this.snapStamp = this.stamp();
    return this.adopt(s);
  }

  /** Makes `s` the snapshot in use. Snapshots from before the plan/commit split do not record the
   *  live table slots: they are read from the maps once, here. */
  private adopt(s: Snapshot): Snapshot {
    if (!s.applied.tableSlots) s.applied.tableSlots = this.reader.liveTableSlots(s.applied);
    this.snap = s;
    return s;
  }

  /**
   * What applying `desired` would change, without touching anything. With `steps`, the plan is
   * built too (next hops are resolved, as an apply would) and its steps are returned.
   */
  plan(desired: DirectorConfig, opts: Pick<ApplyOptions, 'steps' | 'refresh'> = {}): ApplyResult {
    // Manual drains hold whatever is applied: a configuration is compared with them laid over it.
    return this.preview(overlayDrains(desired, this.fresh().applied.drains), opts);
  }

  private preview(desired: DirectorConfig, opts: Pick<ApplyOptions, 'steps' | 'refresh'> = {}): ApplyResult {
    const snap = this.fresh();
    const running = snap.applied.config;
    const changes = diffConfig(running, desired);
    const moves = tableMovesFor(running, desired);
    const { text, data } = formatDiff(changes, moves);
    const result: ApplyResult = { changes, moves, report: data, text, applied: false };
    if (opts.steps) {
      const valid = validateConfig(desired, this.validationLimits(snap));
      const resolved = resolveInputs(snap.applied, valid, Object.keys(snap.interfaces), { refresh: opts.refresh ?? false });
      result.steps = planFor(snap, valid, resolved, limitsOf(snap)).steps;
    }
    return result;
  }

  /** Realservers installed unresolved: they take no new flows until their next hop answers. */
  get unresolved(): RealserverNote[] {
    const applied = this.fresh().applied;
    return notes(applied.config, applied.unresolved ?? {}).map(({ service, address, v }) => ({ service, address, since: v.since, problem: v.problem }));
  }

  /** Manual drains in force. */
  get drains(): Drains {
    return this.fresh().applied.drains ?? {};
  }

  /**
   * Resolves the realservers installed unresolved (outside the lock, every next hop at once) and
   * installs those that answer now; nothing is written when none does. Every CLI command calls
   * it before its own work, and `lvs-xdp run` on a timer.
   */
  async resolvePending(): Promise<string[]> {
    if (Object.keys(this.fresh().applied.unresolved ?? {}).length === 0) return [];
    const r = await this.mutate((running) => running, {}, undefined, true);
    return r.resolved ?? [];
  }

  /** `lvs-xdp drain`: the realserver (or every realserver of the service) at weight 0 until undrained. */
  async drain(scope: DrainScope, opts: ApplyOptions = {}): Promise<ApplyResult> {
    const now = new Date().toISOString();
    return this.mutate((running) => running, opts, (running, drains) => ({ config: running, drains: addDrain(running, drains, scope, now) }));
  }

  /** `lvs-xdp undrain`: the weights from before the drain come back. */
  async undrain(scope: DrainScope, opts: ApplyOptions = {}): Promise<ApplyResult> {
    return this.mutate((running) => running, opts, (running, drains) => removeDrain(running, drains, scope));
  }

  /**
   * Re-reads the attached interfaces' MACs and uppers (one `ip -j -d link`, outside the lock)
   * and brings the accepted destination MACs in lvs_l2_addrs up to date. Every change command
   * and `run`'s resync call it. Returns the step written, if anything had changed.
   */
  async refreshAccepted(): Promise<Step | undefined> {
    const links = readLinks();
    // The set is computed under the lock for the interfaces the snapshot names then (an attach
    // or detach in between is covered without reading again: the links are the namespace's).
    return withLock(this.paths, () => syncAcceptedLocked(this.writer, acceptedSet(links, Object.keys(this.lockedSnapshot().interfaces))));
  }

  /** The accepted destination MACs as the data plane holds them (lvs_l2_addrs). */
  accepted(): AcceptedMac[] {
    return this.reader.accepted();
  }

  /** Applies ipvsadm commands (-A -E -D -C -a -e -d) to the running configuration. */
  async run(commands: readonly IpvsadmCommand[], opts: ApplyOptions = {}): Promise<ApplyResult> {
    const now = new Date().toISOString();
    // `-e -w 0` is a manual drain (kept until `-e -w N` or undrain), not a weight `run` reverts.
    return this.mutate((running) => applyCommands(running, commands), opts, (running, drains) => ({
      config: running, drains: drainsFromCommands(running, drains, commands, now),
    }));
  }

  /** Makes `desired` the running configuration (validated and compiled before anything is written). */
  async apply(desired: DirectorConfig, opts: ApplyOptions = {}): Promise<ApplyResult> {
    return this.mutate(() => desired, opts);
  }

  /** `ipvsadm --set`: changes the given idle timeouts (seconds), keeps the others. */
  async setTimeouts(t: TimeoutSettings, opts: ApplyOptions = {}): Promise<ApplyResult> {
    return this.mutate((running) => ({
      ...running, settings: { ...running.settings, timeouts: { ...running.settings?.timeouts, ...t } },
    }), opts);
  }

  /**
   * Connection sync events (bpf/lvs_sync.h) on or off, and the refresh period in seconds (a live
   * established / UDP entry is reported again each time it crosses a multiple of it; 0: state
   * changes only). One plan of the running configuration whose settings step writes lvs_cfg with
   * the setting, committed like any change; recorded in the snapshot (`applied.sync`), so every
   * later change keeps it and a restarted `run` finds it. Returns the steps written ([] when the
   * director already runs the setting).
   */
  async setSyncEvents(setting: { on: boolean; refreshS?: number }): Promise<Step[]> {
    const refreshS = setting.refreshS ?? 0;
    if (!Number.isInteger(refreshS) || refreshS < 0 || refreshS > 0xffffffff) {
      throw new ConfigError(`sync refresh period ${String(setting.refreshS)}: whole seconds, 0 or more`, { field: 'refreshS' });
    }
    const want: SyncSetting = { on: setting.on, refreshS: setting.on ? refreshS : 0 };
    return withLock(this.paths, () => {
      const snap = this.lockedSnapshot();
      if (snap.pending) recoverPending(this.paths, snap, this.writer, this.reader, limitsOf(snap));
      const cur = snap.applied;
      const was = cur.sync ?? { on: false, refreshS: 0 };
      if (was.on === want.on && was.refreshS === want.refreshS) return [];
      // The running configuration as it was compiled (next hops, allocation and unresolved
      // realservers as recorded): only lvs_cfg differs.
      const view = compileView(cur.config, new Map(Object.entries(cur.l2)), new Set(Object.keys(cur.unresolved ?? {})));
      const plan = recordTarget(buildPlan({
        running: cur, desired: view.config, l2: view.l2, tunnel: cur.tunnel ?? {}, limits: limitsOf(snap),
        allocation: cur.allocation, now: Date.now(), sync: want,
      }), cur.config, cur.unresolved, cur.drains);
      executePlan(this.paths, snap, plan, this.writer);
      return plan.steps;
    });
  }

  /** The connection sync setting the data plane runs (off unless setSyncEvents turned it on). */
  syncEvents(): SyncSetting {
    return this.fresh().applied.sync ?? { on: false, refreshS: 0 };
  }

  private validationLimits(snap: Snapshot) {
    const l = limitsOf(snap);
    return { maxServices: l.maxServices, maxRealservers: l.maxReals, maxTableSize: l.maxTableSize };
  }

  /**
   * A change: its inputs are resolved from the configuration as it is now, without the lock;
   * under the lock the change is recomputed against the snapshot as it is then, and written if
   * everything it needs is already resolved (another process may have changed the director in
   * between: then the missing next hops are resolved, again without the lock, and it retries).
   */
  private async mutate(
    change: (running: DirectorConfig) => DirectorConfig, opts: ApplyOptions,
    drainChange?: (running: DirectorConfig, drains: Drains) => { config: DirectorConfig; drains: Drains },
    retryUnresolved = false,
  ): Promise<ApplyResult> {
    // The configuration wanted from a snapshot: the change, with the drains (changed or not) laid over it.
    const wanted = (snap: Snapshot): { desired: DirectorConfig; drains: Drains } => {
      const d = drainChange ? drainChange(snap.applied.config, snap.applied.drains ?? {}) : { config: snap.applied.config, drains: snap.applied.drains ?? {} };
      // The running services the change leaves alone keep their objects: validation, diff and
      // table moves skip them (a one-realserver change at a thousand services checks one).
      const desired = validateConfig(overlayDrains(change(d.config), d.drains), this.validationLimits(snap), { known: new Set(snap.applied.config.services) });
      return { desired, drains: keptDrains(d.drains, desired) ?? {} };
    };
    let earlier: Resolved | undefined;
    // A command finds the interfaces as they are now: a new MAC or upper is accepted from here on.
    if (!opts.dryRun) await this.refreshAccepted();
    for (let attempt = 0; ; attempt++) {
      const snap = this.fresh();
      if (snap.pending) await this.repair();
      const { desired, drains } = wanted(this.snap);
      const preview = this.preview(desired);
      if (opts.dryRun) return opts.steps ? this.preview(desired, opts) : preview;
      // Nothing to write: no change, no drain changed, and the same realservers unresolved (a
      // plain change leaves the unresolved ones as they are; resolvePending asks them again).
      const idle = (s: Snapshot, unresolved: string[]): boolean => preview.changes.length === 0 && !opts.refresh
        && sameKeys(Object.keys(drains), s.applied.drains) && sameKeys(unresolved, s.applied.unresolved);
      if (idle(this.snap, retryUnresolved ? [] : Object.keys(this.snap.applied.unresolved ?? {}))) return preview;
      const how = { refresh: opts.refresh ?? false, retryUnresolved };
      earlier = await resolveInputsAsync(this.snap.applied, desired, Object.keys(this.snap.interfaces), { ...how, earlier });
      if (idle(this.snap, [...earlier.unresolved.keys()])) return preview;
      const seen = this.snapStamp;
      const done = await withLock(this.paths, (): ApplyResult | undefined => {
        // Unchanged since it was read (no other process wrote in between): what was computed
        // stands; otherwise the change is computed again against what is there now.
        const unchanged = this.stamp() === seen && !this.snap.pending;
        const locked = unchanged ? this.snap : this.lockedSnapshot();
        if (locked.pending) recoverPending(this.paths, locked, this.writer, this.reader, limitsOf(locked));
        const w = unchanged ? { desired, drains } : wanted(locked);
        let resolved: Resolved;
        try {
          resolved = unchanged ? earlier! : resolveInputs(locked.applied, w.desired, Object.keys(locked.interfaces), { ...how, offline: true, earlier });
        } catch (e) {
          if (e instanceof NeedsResolution && attempt < 20) return undefined;
          if (!(e instanceof NeedsResolution)) throw e;
          // Twenty rounds of other processes changing what this one needs: resolve under the lock.
          resolved = resolveInputs(locked.applied, w.desired, Object.keys(locked.interfaces), { ...how, earlier });
        }
        const result = unchanged ? preview : this.preview(w.desired);
        if (result.changes.length === 0 && !opts.refresh && sameKeys(Object.keys(w.drains), locked.applied.drains)
          && sameKeys([...resolved.unresolved.keys()], locked.applied.unresolved)) return result;
        const before = Object.keys(locked.applied.unresolved ?? {});
        const plan = planFor(locked, w.desired, resolved, limitsOf(locked), w.drains);
        executePlan(this.paths, locked, plan, this.writer);
        // What was just written is the snapshot in use: not read back by the next question.
        if (locked === this.snap) this.snapStamp = this.stamp();
        const out: ApplyResult = { ...result, applied: true, steps: plan.steps };
        if (resolved.unresolved.size) out.unresolved = Object.fromEntries(resolved.unresolved);
        const now = before.filter((id) => plan.target.l2[id]);
        if (now.length) out.resolved = now;
        return out;
      });
      if (done) return done;
    }
  }

  /** What the loaded maps hold; enforced before anything is written. */
  limits(): { maxServices: number; maxReals: number; maxTableSize: number } {
    return limitsOf(this.snap);
  }

  /**
   * The lookup tables as the kernel holds them: per service, slot -> realserver address (or
   * null for an empty slot). Read back from the live inner maps, not from the snapshot.
   */
  readTables(): Map<string, (string | null)[]> {
    return this.reader.tables(this.fresh().applied);
  }

  /** The digest of the live tables that directors given the same configuration share (digest.ts). */
  tableDigest(): TableDigest {
    return tablesDigest(this.reader.tableViews(this.fresh().applied));
  }

  /** ipvsadm -Z: zero the packet, byte and connection counters of one service (id) or all. */
  zeroStats(service?: string): void {
    const alloc = this.fresh().applied.allocation;
    if (service !== undefined && !(service in alloc.services)) throw new ConfigError(`service ${service} does not exist`, { hint: 'list them with -L -n' });
    const services = Object.entries(alloc.services).filter(([id]) => service === undefined || id === service).map(([, i]) => i);
    const reals = Object.entries(alloc.reals).filter(([id]) => service === undefined || id.startsWith(`${service}/`)).map(([, a]) => a.index);
    this.writer.zeroStats(services, reals);
  }

  /** The attached interfaces as the kernel sees them (no map is read). */
  linkStatus(): InterfaceStatus[] {
    return linkStatus(this.paths, this.fresh());
  }

  /**
   * Interfaces, program, sizes, memory and fill levels. `sample`: a stats sample just read, whose
   * connection-table fill is reused instead of dumping the table again.
   */
  status(sample?: StatsSample): DirectorStatus {
    return directorStatus(this.paths, this.fresh(), this.writer.maps, this.reader, sample);
  }

  /** Kernel memory of the maps now (fdinfo memlock): each pinned map, and the lookup tables. */
  memory(): MapMemory {
    return mapMemory(this.paths, this.writer.maps, this.reader);
  }

  /** Per-CPU counters summed, per service and realserver, with connection-table counts. */
  readStats(): StatsSample {
    return this.reader.stats(this.fresh().applied);
  }

  /**
   * Live connection counts (lvs_real_conns, what lc wlc sed nq twos fo ovf and thresholds decide
   * on) recounted from the connection table and set where they drifted: entries that expire or are
   * evicted without a packet are unbound only here. `run` calls it every LVS_LC_RECONCILE_S while
   * a service uses them. Returns the slots corrected.
   */
  reconcileConnCounts(): number {
    const fixes = this.reader.connCountFixes(this.fresh().applied);
    this.writer.setConnCounts(fixes);
    return fixes.length;
  }

  /**
   * Connection sync, backup side: a master's IPVS sync entries inserted into the connection and
   * persistence tables (src/sync/insert.ts). The lookups are rebuilt only when the applied
   * configuration changed since the last batch.
   */
  insertSynced(conns: readonly SyncConn[], opts: SyncInsertOptions = {}): SyncInsertResult {
    const applied = this.fresh().applied;
    if (this.syncInserter?.applied !== applied) this.syncInserter = new SyncInserter({ applied, writer: this.writer });
    return this.syncInserter.insert(conns, opts);
  }

  /** The connection table, as `ipvsadm -L -n -c` shows it (live entries only). */
  connections(): ConnectionInfo[] {
    return this.reader.connections(this.fresh().applied);
  }
}

/** NAT realservers whose egress (a resolved ifindex; 0 / none = the ingress interface) is not an
 *  attached interface, grouped by that interface. */
export function natUnattachedOf(
  config: DirectorConfig, l2: Record<string, L2Next>, attached: readonly number[],
): { ifindex: number; ifname: string; realservers: string[] }[] {
  const by = new Map<number, string[]>();
  for (const s of config.services) {
    for (const r of s.realservers) {
      if (r.method !== 'nat') continue;
      const ifindex = l2[realId(s, r)]?.ifindex;
      if (!ifindex || attached.includes(ifindex)) continue;
      by.set(ifindex, [...(by.get(ifindex) ?? []), `${serviceId(s)} -> ${r.address}`]);
    }
  }
  return [...by].map(([ifindex, realservers]) => {
    let ifname = `ifindex ${ifindex}`;
    try {
      ifname = ifName(ifindex);
    } catch {
      // gone meanwhile: the number says enough
    }
    return { ifindex, ifname, realservers };
  });
}

/** Inode and mtime of the snapshot ('' when there is none), of the pending record beside it (an
 *  apply in progress, snapshot.ts writePending) and of the changes committed beside it
 *  (writeCommitted): each write renames a new file into place. */
function snapshotStamp(paths: StatePaths): string {
  const stamp = (path: string): string => {
    try {
      const st = statSync(path);
      return `${st.ino}/${st.mtimeMs}`;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw e;
    }
  };
  const main = stamp(paths.snapshot);
  return main && `${main}+${stamp(pendingPath(paths.snapshot))}+${stamp(deltaPath(paths.snapshot))}`;
}
