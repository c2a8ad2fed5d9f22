/**
 * `lvs-xdp run`: keeps a configuration file applied to the director, with health checks.
 *
 * - Start: reads the file (a bad file: nothing changes, ConfigError), attaches to the given
 *   interfaces that are not attached yet (without --interface the director must be attached
 *   already), applies the effective configuration (file config with down realservers at weight 0
 *   or removed, see health.ts) through Director.apply (diff-based, atomic table switch, locked).
 * - Health checks run per checked realserver; a state change re-applies (only the difference).
 * - reload() (SIGHUP): the file is read again; a bad file is logged and the running config kept;
 *   health state of realservers still checked is kept, and a reload that cannot be applied
 *   changes no health state at all.
 * - Every `resyncMs` the running director is read again: a change made behind run's back
 *   (another lvs-xdp command) is logged as drift and undone. Manual drains (`lvs-xdp drain`,
 *   `-e -w 0`) are not drift: the director lays them over every configuration applied.
 * - One run per director (<state dir>/run.json); a restart seeds health from the last known
 *   state (ops-health.json, else the snapshot) unless it is older than `healthMaxAgeMs`.
 * - Realservers installed unresolved (their next hop does not answer) are resolved again on a
 *   timer with backoff (1 s doubling to 30 s) and take flows as soon as they answer.
 * - stop(): checks and HTTP end, forwarding-path routes are removed; the data plane keeps
 *   forwarding with the last configuration applied (detach removes it).
 */
import type { Server } from 'node:http';
import { checkTarget } from './check.js';
import { CheckLoop, type AfterResult } from './checker.js';
import { runNotify, realserverNotification, quorumNotification, serviceNotification, type Notification } from './notify.js';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Director, type AttachOptions, type DirectorOptions, type StatsSample } from '../director/director.js';
import { NotAttachedError, errorText } from '../errors.js';
import { readConfigFile } from '../config/file.js';
import { statsView, type StatsView } from '../view/stats.js';
import { serviceId, servicesById, isLcScheduler, type DirectorConfig } from '../model/types.js';
import { ABI } from '../abi/generated.js';
import { healthPlan, type HealthPlan, type Target } from './spec.js';
import { HealthModel, type Effective, type ServiceHealth } from './health.js';
import { runProbe, type Endpoint, type ProbeResult } from './probes.js';
import { ForwardingRoutes, type ForwardingOptions } from './forwarding.js';
import { probePath } from './pathprobe.js';
import { neighbourMacAsync } from '../director/neigh.js';
import { statePaths } from '../director/paths.js';
import { realId } from '../dataplane/compile.js';
import { drainOf } from '../director/drain.js';
import { acquireRunLock } from './runlock.js';
import { seedFromHealthFile, seedFromSnapshot, type HealthFileDoc, type Seed } from './seed.js';
import { describeStep } from '../director/plan.js';
import type { DirectorMetrics, HealthRow, ServiceRow } from './metrics.js';
import { buildStatusDoc, type StatusDoc } from './status-doc.js';
import { RateHistory } from './history.js';
import type { Logger } from './log.js';
import type { Announcer } from './announce.js';
import type { BirdSessions } from './bird.js';
import { readDirectorDrain, type DirectorDrain } from '../director/director-drain.js';
import { RunSync } from './sync-run.js';
import { directorSyncDataPlane } from '../sync/dataplane.js';

export interface OperatorOptions {
  file: string;
  state?: DirectorOptions;
  /** Interfaces to attach to when not attached yet. */
  interfaces?: string[];
  attach?: Omit<AttachOptions, keyof DirectorOptions>;
  logger: Logger;
  /** HTTP listener for /metrics, /api/status and the status page; false: none. */
  listen?: { host: string; port: number } | false;
  /** How often the running director is compared with the wanted config (default 30 s). */
  resyncMs?: number;
  /** How often live connection counts are recounted while a service uses them (default LVS_LC_RECONCILE_S). */
  reconcileMs?: number;
  forwarding?: ForwardingOptions;
  processMetrics?: boolean;
  /** A restart seeds health from a last known state at most this old (default 10 min); older: each check's `initial`. */
  healthMaxAgeMs?: number;
  /** Seconds the announced routes outlive a handover (stop({ handover })) for the next run (default 10). */
  handoverGraceS?: number;
  /** The status page's sparklines: a sample of the rates every intervalMs (2 s), at most capacity (180: 6 minutes). */
  history?: { intervalMs: number; capacity: number };
}

/** Backoff of the resolution of unresolved realservers: first try after 1 s, doubling up to 30 s. */
const RESOLVE_FIRST_MS = 1000;
const RESOLVE_MAX_MS = 30_000;


export class Operator {
  private d!: Director;
  private model!: HealthModel;
  private readonly fwd: ForwardingRoutes;
  private readonly checkers = new Map<string, CheckLoop>();
  /** Made at the first scrape: prom-client costs about 6-10 MiB of resident memory, which a
   *  small box running without a listener (or before its first scrape) does not pay. */
  private metrics?: DirectorMetrics;
  private server?: Server;
  private resyncTimer?: NodeJS.Timeout;
  private readonly history: RateHistory;
  private historyTimer?: NodeJS.Timeout;
  private historyPrev?: StatsSample;
  private reconcileTimer?: NodeJS.Timeout;
  /** Realserver slots whose live counts a recount corrected since start. */
  reconciled = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private queued = false;
  private stopped = false;
  private lastServices = new Map<string, ServiceHealth>();
  private lastEffective?: Effective;
  private last?: { sample: StatsSample; view: StatsView; at: number };
  readonly reloads: { ok: number; failed: number; last?: { at: string; ok: boolean; error?: string } } = { ok: 0, failed: 0 };
  readonly applies = { ok: 0, failed: 0 };
  /** When the file was last read and applied successfully (start or reload), ISO. */
  lastLoadOk?: string;
  readonly startedAt = new Date().toISOString();
  private readonly log: Logger;
  private releaseRun?: () => void;
  private resolveTimer?: NodeJS.Timeout;
  private resolveDelay = RESOLVE_FIRST_MS;
  private announcer?: Announcer;
  private announceInput?: typeof import('./announce.js').announceInput;
  private bird?: BirdSessions;
  private attached = true;
  private directorDrain?: DirectorDrain;
  private drainTimer?: NodeJS.Timeout;
  /** Connection sync daemons (settings.sync, ipvsadm --start-daemon). */
  sync?: RunSync;
  /** What seeded health at start (for the status document and tests). */
  seeded?: Omit<Seed, 'states'> & { count: number };

  private constructor(private readonly opts: OperatorOptions) {
    this.log = opts.logger;
    this.fwd = new ForwardingRoutes(opts.forwarding);
    this.history = new RateHistory(opts.history?.intervalMs ?? 2000, opts.history?.capacity ?? 180);
  }

  /** Reads the file, attaches if asked, applies, starts checks and the HTTP listener. */
  static async start(opts: OperatorOptions): Promise<Operator> {
    const op = new Operator(opts);
    const { cfg, plan } = op.readFile();
    // Before anything changes: a second run on the same director is refused, naming the first.
    op.releaseRun = acquireRunLock(statePaths(opts.state ?? {}).stateDir, opts.file, op.startedAt);
    try {
      op.d = await op.openDirector();
    } catch (e) {
      op.releaseRun();
      throw e;
    }
    op.model = new HealthModel(cfg, plan, Date.now());
    op.seedHealth();
    // A restart takes the quorum as it was: a change found while seeding is not news.
    op.model.takeQuorumChanges();
    op.fwd.clear();
    op.fwd.sync(op.model.targetList);
    for (const r of op.fwd.list) if (r.problem) op.log.warn({ event: 'forwarding-path', target: r.key, problem: r.problem }, 'forwarding-path check cannot run');
    op.log.info({
      event: 'started', file: opts.file, services: cfg.services.length, checks: plan.targets.length,
      interfaces: op.d.interfaces, pinDir: op.d.paths.pinDir,
    }, `running ${opts.file}: ${cfg.services.length} service(s), ${plan.targets.length} health check(s)`);
    // The routing daemon's parts (and the HTTP listener's, below) are loaded only when configured:
    // a small box without them does not hold their modules in memory.
    if (cfg.settings?.announce) {
      const announce = await import('./announce.js');
      op.announceInput = announce.announceInput;
      op.announcer = announce.announcerFor(cfg, {
        log: op.log, guardPidFile: `${op.d.paths.stateDir}/announce-guard.pid`, ...(opts.handoverGraceS !== undefined ? { handoverGraceS: opts.handoverGraceS } : {}),
      });
    }
    await op.announcer?.start();
    op.directorDrain = readDirectorDrain(op.d.paths.stateDir);
    if (op.announcer) await op.watchAnnounceInputs(cfg.settings?.announce?.birdSocket);
    const ok = await op.serial(() => op.applyEffective('start'));
    if (ok) op.lastLoadOk = new Date().toISOString();
    if (!ok) {
      await op.stop('start failed');
      throw new Error('the configuration could not be applied (see the log line above)');
    }
    // After the apply: a backup inserts entries only for services and realservers that exist.
    op.sync = new RunSync(() => op.d.paths.stateDir, directorSyncDataPlane(() => op.d), op.log);
    await op.sync.start(cfg.settings?.sync ?? []);
    for (const t of op.model.targetList) op.startChecker(t);
    if (opts.listen) await op.listen(opts.listen.host, opts.listen.port);
    op.resyncTimer = setInterval(() => void op.resync(), opts.resyncMs ?? 30_000);
    op.resyncTimer.unref();
    op.reconcileTimer = setInterval(() => op.reconcileCounts(), opts.reconcileMs ?? ABI.LVS_LC_RECONCILE_S * 1000);
    op.reconcileTimer.unref();
    op.writeHealthFile();
    return op;
  }

  /** A restart: the last known health (ops-health.json, else the snapshot), unless too old. */
  private seedHealth(): void {
    const now = Date.now();
    const max = this.opts.healthMaxAgeMs ?? 600_000;
    const targets = this.model.targetList;
    if (targets.length === 0) return;
    let seed: Seed | undefined;
    try {
      seed = seedFromHealthFile(JSON.parse(readFileSync(this.healthFile, 'utf8')) as HealthFileDoc, targets, now, max);
    } catch {
      // no health file (first run here, or removed): the snapshot says what was applied
    }
    seed ??= seedFromSnapshot(this.model.config, this.d.config, this.d.drains, targets, this.d.updatedAt, now, max);
    if (!seed) return;
    const age = `${(seed.ageMs / 1000).toFixed(0)} s`;
    if (seed.stale) {
      this.seeded = { from: seed.from, ageMs: seed.ageMs, stale: true, count: 0 };
      this.log.warn({ event: 'health-not-seeded', from: seed.from, ageMs: seed.ageMs, maxAgeMs: max },
        `the last known health (${seed.from}) is ${age} old, more than ${max / 1000} s: every check starts in its initial state`);
      return;
    }
    const count = this.model.seed(seed.states);
    this.seeded = { from: seed.from, ageMs: seed.ageMs, stale: false, count };
    const down = seed.states.filter((x) => x.state === 'down').map((x) => x.key);
    this.log.info({ event: 'health-seeded', from: seed.from, ageMs: seed.ageMs, seeded: count, down },
      `health of ${count} realserver(s) from the ${seed.from} (${age} old)${down.length ? `; down: ${down.join(', ')}` : ''}`);
  }

  private readFile(): { cfg: DirectorConfig; plan: HealthPlan } {
    const cfg = readConfigFile(this.opts.file);
    return { cfg, plan: healthPlan(cfg) };
  }

  private async openDirector(): Promise<Director> {
    const state = this.opts.state ?? {};
    const ifaces = this.opts.interfaces ?? [];
    if (ifaces.length > 0) {
      const attached = Director.exists(state) ? Director.open(state) : undefined;
      const have = new Set(attached?.interfaces ?? []);
      attached?.close();
      for (const i of ifaces) {
        if (have.has(i)) continue;
        const d = await Director.attach(i, { ...this.opts.attach, ...state });
        this.log.info({ event: 'attached', interface: i, mode: d.linkStatus().find((x) => x.name === i)?.mode }, `attached to ${i}`);
        d.close();
      }
    }
    const d = Director.open(state);
    if (d.interruptedApply) {
      this.log.warn({ event: 'repair', interruptedAt: d.interruptedApply }, 'completing an apply that was interrupted');
      await d.repair();
    }
    return d;
  }

  /** Runs `fn` after every earlier serialized step (applies never overlap). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private requestApply(reason: string): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    void this.serial(async () => {
      this.queued = false;
      if (!this.stopped) await this.applyEffective(reason);
    });
  }

  private async applyEffective(reason: string): Promise<boolean> {
    const eff = this.model.effective();
    try {
      const r = await this.d.apply(eff.config);
      this.applies.ok++;
      if (r.changes.length > 0) {
        this.log.info({ event: 'applied', reason, changes: r.changes, moved: Object.fromEntries(r.moves) }, `applied ${r.changes.length} change(s) (${reason}): ${r.text.trim().split('\n').join('; ')}`);
      }
      for (const [id, problem] of Object.entries(r.unresolved ?? {})) {
        this.log.warn({ event: 'unresolved', realserver: id, problem }, `${id}: installed unresolved (${problem}): it takes no new flows until it answers`);
      }
      this.scheduleResolve(r.unresolved !== undefined);
      this.lastEffective = eff;
      this.logServiceChanges(eff.services);
      this.writeHealthFile();
      this.announce();
      return true;
    } catch (e) {
      this.applies.failed++;
      this.log.error({ event: 'apply-failed', reason, error: errorText(e) }, `apply failed (${reason}): ${errorText(e)}`);
      return false;
    }
  }

  private logServiceChanges(now: Map<string, ServiceHealth>): void {
    for (const [id, s] of now) {
      const was = this.lastServices.get(id);
      if ((was?.allDown ?? false) === s.allDown && (was?.sorryActive ?? false) === s.sorryActive) continue;
      if (s.allDown) {
        this.log.warn({ event: 'all-down', service: id, policy: s.policy, sorryActive: s.sorryActive, kept: s.keptDown },
          s.sorryActive ? `${id}: every realserver is down: the sorry server takes new flows` : `${id}: every realserver is down: keeping the last set (${s.keptDown.join(', ') || 'none'})`);
      } else if (was?.allDown) {
        this.log.info({ event: 'service-recovered', service: id }, `${id}: a realserver is up again`);
      }
      // service-down / service-up: every realserver with a weight down, and back (not at start).
      if (was && was.allDown !== s.allDown) this.notify(serviceNotification(this.model, id, s.allDown));
    }
    this.lastServices = now;
  }

  // ---- notify commands -------------------------------------------------------------------------

  /** Runs a notify command in the background; its failure is logged, never waited for. */
  private notify(n: Notification | undefined): void {
    if (!n) return;
    const c = n.context;
    void runNotify(n.argv, c).then((r) => {
      if (r.ok) this.log.debug({ event: 'notify', notify: c.event, service: c.service, realserver: c.address, detail: r.detail }, `notify ${c.event}: ${r.detail}`);
      else this.log.warn({ event: 'notify-failed', notify: c.event, service: c.service, realserver: c.address, detail: r.detail }, `notify ${c.event} of ${c.service} failed: ${r.detail}`);
    });
  }

  private notifyQuorumChanges(): void {
    for (const q of this.model.takeQuorumChanges()) {
      const level = q.to === 'down' ? 'warn' : 'info';
      this.log[level]({ event: `quorum-${q.to}`, service: q.service, upWeight: q.upWeight, quorum: q.quorum },
        `${q.service}: quorum ${q.to === 'up' ? 'gained' : 'lost'} (up weight ${q.upWeight}, quorum ${q.quorum})`);
      this.notify(quorumNotification(this.model, q));
    }
  }

  // ---- health checks ---------------------------------------------------------------------------

  private startChecker(t: Target): void {
    // The first checks are spread (warm-up) so they do not all start together; see checker.ts.
    this.checkers.set(t.key, new CheckLoop(t, (x) => this.probe(x), (x, r) => this.stopped ? undefined : this.onResult(x, r)).start());
  }

  private stopChecker(key: string): void {
    const c = this.checkers.get(key);
    if (!c) return;
    c.stop();
    this.checkers.delete(key);
  }

  private probe(t: Target): Promise<ProbeResult> {
    return checkTarget(t, { fwd: this.fwd, nextHop: (svc, rs) => this.d?.nextHop(svc, rs) });
  }

  private onResult(t: Target, r: ProbeResult): AfterResult | undefined {
    const tr = this.model.report(t.key, r.ok, r.detail, Date.now());
    this.log.debug({ event: 'check', service: t.service, realserver: t.address, ok: r.ok, detail: r.detail }, 'check');
    const h = this.model.stateByKey(t.key);
    const after = h ? { state: h.state, failRun: h.failRun } : undefined;
    if (!tr) return after;
    const level = tr.to === 'down' ? 'warn' : 'info';
    this.log[level]({ event: 'health', service: tr.service, realserver: tr.address, from: tr.from, to: tr.to, detail: tr.detail },
      `${tr.service}: realserver ${tr.address} is ${tr.to.toUpperCase()} (${tr.detail})`);
    this.notify(realserverNotification(this.model, t, tr));
    this.notifyQuorumChanges();
    this.requestApply(`health: ${tr.address} ${tr.to}`);
    this.writeHealthFile();
    return after;
  }

  // ---- reload and resync -----------------------------------------------------------------------

  /** SIGHUP: read the file again; a bad file is logged and the running config kept. */
  reload(): Promise<boolean> {
    return this.serial(async () => {
      const at = new Date().toISOString();
      let next: { cfg: DirectorConfig; plan: HealthPlan };
      try {
        next = this.readFile();
      } catch (e) {
        this.reloads.failed++;
        this.reloads.last = { at, ok: false, error: errorText(e) };
        this.log.error({ event: 'reload-failed', file: this.opts.file, error: errorText(e) }, `reload failed, keeping the running configuration: ${errorText(e)}`);
        return false;
      }
      const prevCfg = this.model.config;
      const prevPlan = healthPlan(prevCfg);
      // A reload that cannot be applied changes no health state: the states of realservers the
      // new file dropped come back with the old file (not their check's `initial`).
      const saved = this.model.save();
      this.model.setConfig(next.cfg, next.plan, Date.now());
      if (!(await this.applyEffective('reload'))) {
        this.model.setConfig(prevCfg, prevPlan, Date.now(), saved);
        this.model.takeQuorumChanges(); // back where it was: nothing changed
        this.lastEffective = this.model.effective();
        this.reloads.failed++;
        this.reloads.last = { at, ok: false, error: 'apply failed' };
        this.log.error({ event: 'reload-failed', file: this.opts.file }, 'reload failed (the new configuration could not be applied), keeping the running configuration');
        return false;
      }
      this.syncCheckers(next.plan);
      await this.sync?.configure(next.cfg.settings?.sync ?? []);
      this.notifyQuorumChanges();
      this.reloads.ok++;
      this.reloads.last = { at, ok: true };
      this.lastLoadOk = new Date().toISOString();
      this.log.info({ event: 'reloaded', file: this.opts.file, services: next.cfg.services.length, checks: next.plan.targets.length }, `reloaded ${this.opts.file}`);
      return true;
    });
  }

  private syncCheckers(plan: HealthPlan): void {
    const want = new Map(plan.targets.map((t) => [t.key, t]));
    for (const key of [...this.checkers.keys()]) {
      const c = this.checkers.get(key)!;
      const t = want.get(key);
      if (!t || JSON.stringify(t) !== JSON.stringify(c.target)) this.stopChecker(key);
    }
    this.fwd.sync(plan.targets);
    for (const r of this.fwd.list) if (r.problem) this.log.warn({ event: 'forwarding-path', target: r.key, problem: r.problem }, 'forwarding-path check cannot run');
    for (const t of plan.targets) if (!this.checkers.has(t.key)) this.startChecker(t);
  }

  /** Reads the running director again; undoes changes made behind run's back. */
  resync(): Promise<void> {
    return this.serial(async () => {
      if (this.stopped) return;
      let fresh: Director;
      try {
        // Never attaches again: a director detached behind run's back stays detached.
        fresh = Director.open(this.opts.state ?? {});
        if (fresh.interruptedApply) await fresh.repair();
      } catch (e) {
        this.log.error({ event: e instanceof NotAttachedError ? 'director-missing' : 'resync-failed', error: errorText(e) }, `cannot open the director: ${errorText(e)}`);
        if (e instanceof NotAttachedError) this.announce(false);
        return;
      }
      this.d.close();
      this.d = fresh;
      // An interface's new MAC or upper (macvlan, VRRP vmac) is accepted within one resync.
      const l2 = await this.d.refreshAccepted().catch((e: unknown) => this.log.error({ event: 'resync-failed', error: errorText(e) }, `cannot read the interfaces: ${errorText(e)}`));
      if (l2) this.log.info({ event: 'accepted-macs' }, `accepted MACs changed: ${describeStep(l2)}`);
      const want = this.model.effective().config;
      const p = this.d.plan(want);
      if (p.changes.length > 0) {
        this.log.warn({ event: 'drift', changes: p.changes }, `the running configuration was changed outside run: restoring (${p.changes.length} change(s))`);
        await this.applyEffective('drift');
      }
      this.announce(true);
    });
  }

  /**
   * Realservers installed unresolved are asked again on a timer: after 1 s, then backing off to
   * 30 s while they still do not answer (`reset`: a change installed new ones, start over).
   */
  private scheduleResolve(reset: boolean): void {
    if (this.stopped) return;
    if (reset) {
      this.resolveDelay = RESOLVE_FIRST_MS;
      clearTimeout(this.resolveTimer);
      this.resolveTimer = undefined;
    }
    if (this.resolveTimer || this.d.unresolved.length === 0) return;
    this.resolveTimer = setTimeout(() => {
      void this.serial(async () => {
        this.resolveTimer = undefined;
        if (this.stopped) return;
        try {
          for (const id of await this.d.resolvePending()) this.log.info({ event: 'resolved', realserver: id }, `${id}: answers now, takes new flows`);
        } catch (e) {
          this.log.error({ event: 'resolve-failed', error: errorText(e) }, `resolving the unresolved realservers failed: ${errorText(e)}`);
        }
        this.writeHealthFile();
        this.announce();
        this.resolveDelay = Math.min(this.resolveDelay * 2, RESOLVE_MAX_MS);
        this.scheduleResolve(false);
      });
    }, this.resolveDelay);
    this.resolveTimer.unref();
  }

  /**
   * `lvs-xdp drain --director` is seen within 250 ms (a file in the state directory: a stat per
   * poll), BIRD's sessions every second (their state changes are logged).
   */
  private async watchAnnounceInputs(birdSocket: string | undefined): Promise<void> {
    this.drainTimer = setInterval(() => {
      const now = readDirectorDrain(this.d.paths.stateDir);
      if (now?.since === this.directorDrain?.since) return;
      // The record went with the rest of the state (drain --detach, detach): detached, not undrained.
      if (!now && !existsSync(this.d.paths.snapshot)) {
        if (this.attached) this.announce(false);
        return;
      }
      this.directorDrain = now;
      this.log.warn({ event: now ? 'director-drained' : 'director-undrained', ...(now ? { since: now.since } : {}) },
        now ? 'the director is drained: every VIP is withdrawn, forwarding goes on' : 'the director drain ended: VIPs are announced again');
      this.announce();
    }, 250);
    this.drainTimer.unref();
    if (!birdSocket) return;
    const { BirdSessions } = await import('./bird.js');
    this.bird = new BirdSessions(birdSocket, ({ session: s, was }) => this.log[s.established ? 'info' : 'warn'](
      { event: 'bgp-session', session: s.name, state: s.bgp, info: s.info, ...(was ? { was: was.bgp } : {}) },
      `BGP session ${s.name}: ${was ? `${was.bgp} -> ` : ''}${s.bgp}${s.info ? ` (${s.info})` : ''}`));
    this.bird.start();
  }

  /** The VIP routes follow the state (drains by other commands show at a resync); applies never wait for them. */
  private announce(attached = this.attached): void {
    this.attached = attached;
    if (this.announcer && this.announceInput) void this.announcer.update(this.announceInput(this.model.config, this.lastEffective ?? this.model.effective(), this.attached, () => this.healthRows(), this.directorDrain !== undefined));
  }

  // ---- status, metrics, HTTP -------------------------------------------------------------------

  private sample(): { sample: StatsSample; view: StatsView } {
    const now = Date.now();
    if (this.last && now - this.last.at < 500) return this.last;
    const sample = this.d.readStats();
    // The first page load, or one after a long pause, takes its rates from the history's last
    // reading (at most an interval old) instead of showing 0 or an average over minutes.
    const stale = !this.last || now - this.last.at > 2 * this.history.intervalMs;
    // (Not a reading taken just now: the history's first, when a status() started it.)
    const prev = this.historyPrev && sample.at - this.historyPrev.at >= 500_000_000n ? this.historyPrev : undefined;
    const view = statsView(sample, stale && prev ? prev : this.last?.sample);
    this.last = { sample, view, at: now };
    return this.last;
  }

  /**
   * The sparklines' sampling, from the first consumer on (the HTTP listener, or a first status()
   * from a library caller): a run without either (`--no-listen`, the small box) neither reads
   * the counters every interval nor keeps minutes of rates (up to 180 samples x 2 per
   * realserver: ~0.4 MiB at 128 realservers).
   */
  private keepHistory(): void {
    if (this.historyTimer || this.stopped) return;
    this.sampleHistory();
    this.historyTimer = setInterval(() => this.sampleHistory(), this.history.intervalMs);
    this.historyTimer.unref();
  }

  /** One sample of every realserver's rates for the sparklines (its own previous reading, so scrapes do not shorten its interval). */
  private sampleHistory(): void {
    try {
      const cur = this.d.readStats();
      if (this.historyPrev) this.history.push(statsView(cur, this.historyPrev));
      this.historyPrev = cur;
    } catch {
      // the director went away (detach): the resync says so; the history waits
    }
  }

  private healthRows(): HealthRow[] {
    const eff = this.lastEffective ?? this.model.effective();
    const rows: HealthRow[] = [];
    const unresolved = new Set(this.d.unresolved.map((u) => `${u.service}/${u.address}`));
    const drains = this.d.drains;
    const effective = servicesById(eff.config.services);
    for (const svc of this.model.config.services) {
      const es = effective.get(serviceId(svc));
      for (const r of svc.realservers) {
        const h = this.model.stateOf(svc, r);
        const e = es?.realservers.find((x) => x.address === r.address);
        const row: HealthRow = { service: serviceId(svc), address: r.address, configuredWeight: r.weight, checks: h?.checks ?? 0, failures: h?.failures ?? 0 };
        if (h) row.up = h.state === 'up' ? 1 : 0;
        if (e) row.effectiveWeight = drainOf(drains, svc, r.address) ? 0 : e.weight;
        row.unresolved = unresolved.has(realId(svc, r));
        row.drained = drainOf(drains, svc, r.address) !== undefined;
        if (h) row.since = new Date(h.since).toISOString();
        rows.push(row);
      }
    }
    return rows;
  }

  private serviceRows(): ServiceRow[] {
    const eff = this.lastEffective ?? this.model.effective();
    return [...eff.services.values()].map((s) => ({ service: s.id, allDown: s.allDown, sorryActive: s.sorryActive }));
  }

  private async metricsRegistry(): Promise<DirectorMetrics> {
    if (!this.metrics) {
      const { DirectorMetrics: M } = await import('./metrics.js');
      this.metrics ??= new M({ processMetrics: this.opts.processMetrics ?? true });
    }
    return this.metrics;
  }

  async metricsText(): Promise<string> {
    const metrics = await this.metricsRegistry();
    const sample = this.d.readStats();
    metrics.update({
      sample, interfaces: this.d.linkStatus(), health: this.healthRows(), services: this.serviceRows(),
      reloads: this.reloads, applies: this.applies, announcements: this.announcer?.state(), tables: this.d.tableDigest(), memory: this.d.memory(),
      ...(this.announcer ? { directorDrained: this.directorDrain !== undefined } : {}), ...(this.bird ? { bgpSessions: this.bird.sessions ?? [] } : {}),
      configChangedAt: this.d.updatedAt, ...(this.sync?.list().length ? { sync: this.sync.list() } : {}), ...(this.lastLoadOk ? { lastLoadOk: this.lastLoadOk } : {}),
    });
    return metrics.text();
  }

  status(): StatusDoc {
    this.keepHistory();
    const drained = new Map<string, string>();
    const drains = this.d.drains;
    for (const svc of this.model.config.services) {
      for (const r of svc.realservers) {
        const dr = drainOf(drains, svc, r.address);
        if (dr) drained.set(realId(svc, r), dr.since);
      }
    }
    return {
      ...(this.announcer ? { announcements: this.announcer.state(), directorDrain: this.directorDrain ?? null } : {}),
      ...(this.bird ? { bgp: this.bird.sessions ?? [], ...(this.bird.error ? { bgpError: this.bird.error } : {}) } : {}),
      ...(this.sync?.list().length ? { sync: this.sync.list() } : {}),
      ...buildStatusDoc({
      view: this.sample().view, model: this.model, effective: this.lastEffective ?? this.model.effective(),
      file: this.opts.file, startedAt: this.startedAt, reloads: this.reloads, interfaces: this.d.linkStatus(),
      unresolved: new Map(this.d.unresolved.map((u) => [`${u.service}/${u.address}`, { since: u.since, problem: u.problem ?? '' }])), drained,
      history: this.history,
    }) };
  }

  private async listen(host: string, port: number): Promise<void> {
    this.keepHistory();
    const { serveHttp } = await import('./http.js');
    this.server = await serveHttp({
      metrics: async () => ({ text: await this.metricsText(), contentType: (await this.metricsRegistry()).contentType }),
      status: () => this.status(), log: this.log,
    }, host, port);
  }

  get address(): { address: string; port: number } | undefined {
    const a = this.server?.address();
    return typeof a === 'object' && a ? { address: a.address, port: a.port } : undefined;
  }

  /** Health state for other processes (`lvs-xdp top`): <state dir>/ops-health.json. */
  private get healthFile(): string {
    return `${this.d.paths.stateDir}/ops-health.json`;
  }

  /** Also the last known state for the next run (kept at stop, with `stoppedAt`). */
  private writeHealthFile(stoppedAt?: string): void {
    if (!this.d || !this.model) return;
    try {
      const doc: HealthFileDoc & Record<string, unknown> = {
        pid: process.pid, file: this.opts.file, updatedAt: new Date().toISOString(), ...(stoppedAt ? { stoppedAt } : {}),
        realservers: this.healthRows().map((r) => ({ ...r, state: r.up === undefined ? 'unchecked' : r.up ? 'up' : 'down' })),
        // The all-down policy per service, for `lvs-xdp metrics` beside a run.
        services: this.serviceRows(),
      };
      const tmp = `${this.healthFile}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(doc)}\n`, { mode: 0o644 });
      renameSync(tmp, this.healthFile);
    } catch {
      // the state directory went away (detach): the next resync says so
    }
  }

  /** The least-connection family's and thresholds' counts recounted (Director.reconcileConnCounts),
   *  only while a running service needs them: the recount dumps the connection table. */
  private reconcileCounts(): void {
    if (this.stopped || !this.d) return;
    try {
      const cfg = this.d.config;
      if (!cfg.services.some((s) => isLcScheduler(s.scheduler) || s.realservers.some((r) => (r.upperThreshold ?? 0) > 0))) return;
      // Not logged: entries ending without a packet make a correction the normal case.
      this.reconciled += this.d.reconcileConnCounts();
    } catch (e) {
      this.log.error({ event: 'reconcile-failed', error: errorText(e) }, `cannot recount live connections: ${errorText(e)}`);
    }
  }

  /**
   * Ends checks and the listener; the data plane keeps forwarding with the last configuration.
   * The VIPs are withdrawn, unless `handover`: a new run takes the routes over (run --takeover).
   */
  async stop(reason = 'signal', opts: { handover?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const k of [...this.checkers.keys()]) this.stopChecker(k);
    clearInterval(this.resyncTimer);
    clearInterval(this.drainTimer);
    this.bird?.stop();
    clearInterval(this.historyTimer);
    clearInterval(this.reconcileTimer);
    clearTimeout(this.resolveTimer);
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((r) => this.server!.close(() => r()));
    }
    await this.chain.catch(() => undefined);
    await this.sync?.stop();
    if (opts.handover) await this.announcer?.handover();
    else await this.announcer?.stop();
    try {
      this.fwd.clear();
    } catch {
      // best effort
    }
    if (this.d) {
      // The health file stays: the next run starts from it (`lvs-xdp top` ignores a stopped run's).
      this.writeHealthFile(new Date().toISOString());
      this.d.close();
    }
    this.releaseRun?.();
    this.log.info({ event: 'stopped', reason, ...(opts.handover ? { handover: true } : {}) }, opts.handover
      ? 'handed over: the VIPs stay announced for the next run; the data plane keeps forwarding'
      : 'stopped: the data plane keeps forwarding with the last configuration applied (lvs-xdp detach removes it)');
  }
}
