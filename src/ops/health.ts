/**
 * The health state machine (pure: no I/O, time passed in). Per checked realserver: up or down,
 * with runs of consecutive successes and failures; `fall` failures in a row take an up
 * realserver down, `rise` successes in a row bring a down one back. The effective config is the
 * file's with every down realserver's weight set to 0 (on-down: finish, its flows go on) or
 * removed (on-down: cut, its flows are rescheduled), and the service's all-down policy applied
 * when none of its realservers that the file gives a weight is left:
 *   - keep-last: the realservers that served last stay in the table (better than nothing);
 *   - sorry-server: the sorry server (weight 1) gets every new flow.
 * Quorum (keepalived's): each service is "quorum up" while the weights of its up realservers add
 * up to enough. Gaining it needs quorum + hysteresis, losing it takes less than quorum -
 * hysteresis (or nothing up at all); in between the state stays (a flap dampener). Without a
 * quorum in the file it is 1 with no hysteresis, which only drives the quorum-up / quorum-down
 * notifications; with one, losing it under all-down: sorry-server puts the sorry server in and
 * takes every realserver out, as keepalived does.
 */
import { serviceId, tableSizeOf, type DirectorConfig, type Realserver, type VirtualService } from '../model/types.js';
import { targetKey, type HealthPlan, type ServicePolicy, type Target } from './spec.js';

export type HealthState = 'up' | 'down';

export interface RealHealth {
  key: string;
  service: string;
  address: string;
  state: HealthState;
  /** Consecutive successes / failures up to now. */
  okRun: number;
  failRun: number;
  checks: number;
  failures: number;
  /** ms (the caller's clock) of the last state change, or of the start. */
  since: number;
  last?: { ok: boolean; detail: string; at: number };
}

export interface Transition {
  key: string;
  service: string;
  address: string;
  from: HealthState;
  to: HealthState;
  detail: string;
}

export interface ServiceHealth {
  id: string;
  policy: ServicePolicy['allDown'];
  /** No realserver with a weight in the file is up: the all-down policy is in force. */
  allDown: boolean;
  sorryActive: boolean;
  /** Addresses kept in the table by keep-last although down. */
  keptDown: string[];
  /** Only for a service with a quorum in the file. */
  quorum?: { up: boolean; upWeight: number; quorum: number; hysteresis: number };
}

/** A service's quorum gained or lost (for the quorum-up / quorum-down notify commands). */
export interface QuorumChange { service: string; to: 'up' | 'down'; upWeight: number; quorum: number }

/** What a failed reload goes back to (HealthModel.save). */
export interface SavedHealth { states: ReadonlyMap<string, RealHealth>; lastServing: ReadonlyMap<string, ReadonlySet<string>> }

/** A realserver's last known state, from a previous run (ops-health.json) or the snapshot. */
export interface SeedState { key: string; state: HealthState; since: number }

export interface Effective {
  config: DirectorConfig;
  services: Map<string, ServiceHealth>;
}

export class HealthModel {
  private states = new Map<string, RealHealth>();
  private targets = new Map<string, Target>();
  private lastServing = new Map<string, Set<string>>();
  private cfg: DirectorConfig = { services: [] };
  private plan: HealthPlan = { targets: [], policies: new Map() };
  private quorumUp = new Map<string, boolean>();
  private quorumChanges: QuorumChange[] = [];

  constructor(cfg: DirectorConfig, plan: HealthPlan, now: number) {
    this.setConfig(cfg, plan, now);
  }

  get config(): DirectorConfig {
    return this.cfg;
  }

  get targetList(): Target[] {
    return [...this.targets.values()];
  }

  /**
   * A new file config (start or reload). Realservers still checked keep their state and runs;
   * new ones start in their check's `initial` state; removed ones are forgotten.
   */
  setConfig(cfg: DirectorConfig, plan: HealthPlan, now: number, saved?: SavedHealth): void {
    this.cfg = cfg;
    this.plan = plan;
    const next = new Map<string, RealHealth>();
    this.targets = new Map(plan.targets.map((t) => [t.key, t]));
    for (const t of plan.targets) {
      // `saved`: the state from before a reload that failed, for realservers that reload dropped.
      const old = this.states.get(t.key) ?? saved?.states.get(t.key);
      next.set(t.key, old ?? {
        key: t.key, service: t.service, address: t.address, state: t.spec.initial, okRun: 0, failRun: 0, checks: 0, failures: 0, since: now,
      });
    }
    this.states = next;
    for (const [id, set] of saved?.lastServing ?? []) if (!this.lastServing.has(id)) this.lastServing.set(id, new Set(set));
    const ids = new Set(cfg.services.map(serviceId));
    for (const id of [...this.lastServing.keys()]) if (!ids.has(id)) this.lastServing.delete(id);
    for (const id of [...this.quorumUp.keys()]) if (!ids.has(id)) this.quorumUp.delete(id);
    this.refreshServing();
  }

  /** The health state as it is, to go back to when a reload cannot be applied. */
  save(): SavedHealth {
    return {
      states: new Map([...this.states].map(([k, h]) => [k, { ...h, ...(h.last ? { last: { ...h.last } } : {}) }])),
      lastServing: new Map([...this.lastServing].map(([k, v]) => [k, new Set(v)])),
    };
  }

  /**
   * A restart of `run`: the last known state of each realserver still checked (its runs start
   * again; a realserver without one keeps its check's `initial`). Returns how many were seeded.
   */
  seed(known: readonly SeedState[]): number {
    let n = 0;
    for (const k of known) {
      const h = this.states.get(k.key);
      if (!h) continue;
      h.state = k.state;
      h.since = k.since;
      n++;
    }
    if (n) this.refreshServing();
    return n;
  }

  /** One probe result; returns the state change it caused, if any. */
  report(key: string, ok: boolean, detail: string, now: number): Transition | undefined {
    const h = this.states.get(key);
    const t = this.targets.get(key);
    if (!h || !t) return undefined;
    h.checks++;
    h.last = { ok, detail, at: now };
    let tr: Transition | undefined;
    if (ok) {
      h.failRun = 0;
      h.okRun++;
      if (h.state === 'down' && h.okRun >= t.spec.rise) tr = this.change(h, 'up', detail, now);
    } else {
      h.failures++;
      h.okRun = 0;
      h.failRun++;
      if (h.state === 'up' && h.failRun >= t.spec.fall) tr = this.change(h, 'down', detail, now);
    }
    if (tr) this.refreshServing();
    return tr;
  }

  private change(h: RealHealth, to: HealthState, detail: string, now: number): Transition {
    const tr: Transition = { key: h.key, service: h.service, address: h.address, from: h.state, to, detail };
    h.state = to;
    h.since = now;
    return tr;
  }

  /** Health of one realserver of a service: its state, or undefined when it is not checked. */
  stateOf(svc: VirtualService, rs: Pick<Realserver, 'address'>): RealHealth | undefined {
    return this.states.get(targetKey(svc, rs.address));
  }

  get all(): RealHealth[] {
    return [...this.states.values()];
  }

  private isDown(svc: VirtualService, rs: Realserver): boolean {
    return this.stateOf(svc, rs)?.state === 'down';
  }

  /** Remembers, per service, the realservers that serve while at least one does; updates quorums. */
  private refreshServing(): void {
    for (const svc of this.cfg.services) {
      const serving = svc.realservers.filter((r) => r.weight > 0 && !this.isDown(svc, r)).map((r) => r.address);
      if (serving.length > 0) this.lastServing.set(serviceId(svc), new Set(serving));
      this.updateQuorum(svc);
    }
  }

  /** The sum of the file weights of a service's realservers that are not down. */
  upWeight(svc: VirtualService): number {
    return svc.realservers.reduce((sum, r) => sum + (this.isDown(svc, r) ? 0 : r.weight), 0);
  }

  private quorumOf(id: string): { quorum: number; hysteresis: number } {
    return this.plan.policies.get(id)?.quorum ?? { quorum: 1, hysteresis: 0 };
  }

  /**
   * keepalived's update_quorum_state: a service starts with its quorum up and is evaluated at
   * once (so a service whose realservers all start down starts with it lost, without a change
   * reported); later changes are queued for takeQuorumChanges().
   */
  private updateQuorum(svc: VirtualService): void {
    const id = serviceId(svc);
    const known = this.quorumUp.has(id);
    const up = this.quorumUp.get(id) ?? true;
    const { quorum, hysteresis } = this.quorumOf(id);
    const w = this.upWeight(svc);
    let next = up;
    if (!up && w >= quorum + hysteresis) next = true;
    else if (up && (w === 0 || w < quorum - hysteresis)) next = false;
    this.quorumUp.set(id, next);
    if (known && next !== up) this.quorumChanges.push({ service: id, to: next ? 'up' : 'down', upWeight: w, quorum });
  }

  /** A realserver's health by its target key. */
  stateByKey(key: string): RealHealth | undefined {
    return this.states.get(key);
  }

  /** A service's all-down / quorum / notify policy. */
  policy(id: string): ServicePolicy | undefined {
    return this.plan.policies.get(id);
  }

  /** Whether a service's quorum is up now. */
  quorumIsUp(id: string): boolean {
    return this.quorumUp.get(id) ?? true;
  }

  /** The quorum changes since the last call, oldest first. */
  takeQuorumChanges(): QuorumChange[] {
    const out = this.quorumChanges;
    this.quorumChanges = [];
    return out;
  }

  /** The config to apply now, and each service's all-down status. */
  effective(): Effective {
    const services = new Map<string, ServiceHealth>();
    const out: DirectorConfig = { ...this.cfg, services: [] };
    for (const svc of this.cfg.services) {
      const id = serviceId(svc);
      const policy = this.plan.policies.get(id) ?? { allDown: 'keep-last' };
      const weighted = svc.realservers.filter((r) => r.weight > 0);
      const allDown = weighted.length > 0 && weighted.every((r) => this.isDown(svc, r));
      const sh: ServiceHealth = { id, policy: policy.allDown, allDown, sorryActive: false, keptDown: [] };
      const quorumLost = policy.quorum !== undefined && !this.quorumIsUp(id);
      if (policy.quorum) sh.quorum = { up: !quorumLost, upWeight: this.upWeight(svc), ...policy.quorum };
      // A lost quorum sends everything to the sorry server (keepalived: its realservers go out).
      const sorry = policy.allDown === 'sorry-server' && policy.sorry !== undefined && (allDown || quorumLost);
      let keep = new Set<string>();
      if (allDown && policy.allDown === 'keep-last') {
        const last = this.lastServing.get(id);
        keep = new Set(weighted.map((r) => r.address).filter((a) => !last || last.has(a)));
        sh.keptDown = [...keep];
      }
      const realservers: Realserver[] = [];
      for (const r of svc.realservers) {
        const spec = this.targets.get(targetKey(svc, r.address))?.spec;
        if (sorry && !this.isDown(svc, r)) {
          if (spec?.onDown !== 'cut') realservers.push({ ...r, weight: 0 });
          continue;
        }
        if (!this.isDown(svc, r) || keep.has(r.address)) {
          realservers.push(r);
          continue;
        }
        if (spec?.onDown === 'cut') continue;
        realservers.push({ ...r, weight: 0 });
      }
      if (sorry && policy.sorry) {
        realservers.push({ ...policy.sorry, port: svc.port });
        sh.sorryActive = true;
      }
      const eff: VirtualService = { ...svc, realservers };
      // Health never resizes a table: a cut realserver or a sorry server would move the Maglev
      // default (by the count) and so nearly every flow's slot; the size stays the written one's.
      if (tableSizeOf(eff) !== tableSizeOf(svc)) eff.tableSize = tableSizeOf(svc);
      out.services.push(eff);
      services.set(id, sh);
    }
    return { config: out, services };
  }
}
