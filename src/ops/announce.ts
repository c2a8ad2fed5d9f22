/**
 * VIP announcement through a routing daemon (BIRD 2), without speaking BGP: `lvs-xdp run` keeps
 * one kernel route per announced VIP in a routing table of its own (`settings.announce.table`,
 * routes `VIP/32 dev lo proto <protocol>`); the daemon's kernel protocol learns that table and
 * exports its routes over BGP. No rule points at the table, so the routes never forward anything.
 *
 * - decideAnnouncements (pure): a VIP is announced while the data plane is attached and one of
 *   its services has a realserver that takes new flows (not down, weight > 0, not drained, not
 *   unresolved), or its sorry server is active; else withdrawn, with the reason.
 * - Announcer: installs / removes the routes (async `ip` spawns, serialized, the latest wanted
 *   state wins); stop() withdraws every VIP.
 * - A dead control plane: at start run spawns a guard (`sh`, its own process group) whose stdin
 *   is a pipe from run. When run dies, even by SIGKILL, the kernel closes the pipe: the guard
 *   reads EOF and flushes the table (both families), so the daemon withdraws within
 *   milliseconds plus its own export delay.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { Logger } from './log.js';
import type { HealthRow } from './metrics.js';
import type { Effective } from './health.js';
import { serviceId, type DirectorConfig } from '../model/types.js';
import { compareAddresses } from '../model/address.js';

export interface AnnounceSettings {
  /** Kernel routing table the daemon learns (no rule points at it). */
  table: number;
  /** Route protocol number marking lvs-xdp's routes (what the daemon filters on). */
  protocol: number;
}

export const DEFAULT_ANNOUNCE_PROTOCOL = 201;

export type AnnounceReason = 'serving' | 'sorry-server' | 'no-healthy-realserver' | 'drained' | 'director-drained' | 'detached' | 'stopped';

export interface VipDecision { vip: string; announce: boolean; reason: AnnounceReason }

export interface AnnounceInput {
  /** The data plane is attached (run could open the director at its last look). */
  attached: boolean;
  /** `lvs-xdp drain --director`: every VIP withdrawn while the data plane goes on forwarding. */
  directorDrained?: boolean;
  services: { id: string; vip: string; sorryActive: boolean }[];
  rows: HealthRow[];
}

function takesFlows(r: HealthRow): boolean {
  return r.up !== 0 && r.effectiveWeight !== undefined && r.effectiveWeight > 0 && !r.drained && !r.unresolved;
}

/** Per VIP (sorted): announce or withdraw, and why. */
export function decideAnnouncements(input: AnnounceInput): VipDecision[] {
  const byVip = new Map<string, { serving: boolean; sorry: boolean; drained: boolean }>();
  for (const s of input.services) {
    const v = byVip.get(s.vip) ?? { serving: false, sorry: false, drained: false };
    const rows = input.rows.filter((r) => r.service === s.id);
    v.serving ||= rows.some(takesFlows);
    v.sorry ||= s.sorryActive;
    // Drained: a realserver that would take flows but for the drain.
    v.drained ||= rows.some((r) => r.drained && r.up !== 0 && !r.unresolved);
    byVip.set(s.vip, v);
  }
  return [...byVip.entries()].sort(([a], [b]) => compareAddresses(a, b)).map(([vip, v]): VipDecision => {
    if (!input.attached) return { vip, announce: false, reason: 'detached' };
    if (input.directorDrained) return { vip, announce: false, reason: 'director-drained' };
    if (v.serving) return { vip, announce: true, reason: 'serving' };
    if (v.sorry) return { vip, announce: true, reason: 'sorry-server' };
    return { vip, announce: false, reason: v.drained ? 'drained' : 'no-healthy-realserver' };
  });
}

/** `ip` arguments (pure): add, delete, or list lvs-xdp's routes of one family. */
export function routeArgs(s: AnnounceSettings, op: 'replace' | 'del', vip: string): string[] {
  const v6 = isIPv6(vip);
  const base = [v6 ? '-6' : '-4', 'route', op, `${vip}/${v6 ? 128 : 32}`];
  return [...base, ...(op === 'replace' ? ['dev', 'lo'] : []), 'table', String(s.table), 'proto', String(s.protocol)];
}

export function listArgs(s: AnnounceSettings, family: 4 | 6): string[] {
  return ['-j', `-${family}`, 'route', 'show', 'table', String(s.table), 'proto', String(s.protocol)];
}

/** argv[0] of the guard's shell: how a new run recognises an old run's guard (never another process). */
export const GUARD_NAME = 'lvs-xdp-announce-guard';

/**
 * The guard's shell script: wait for a line or EOF on stdin. EOF (run gone, SIGKILL included):
 * flush both families now. "handover" (run hands the routes to a new run, `run --takeover` or
 * SIGUSR2): keep them for `graceS` seconds, then flush, unless the new run ends this guard first
 * (it kills the guard's process group once its own guard runs).
 */
export function guardScript(s: AnnounceSettings, graceS = 10): string {
  const flush = (f: 4 | 6) => `ip -${f} route flush table ${s.table} proto ${s.protocol} 2>/dev/null`;
  return `read -r line; if [ "$line" = handover ]; then sleep ${graceS}; fi; ${flush(4)}; ${flush(6)}; exit 0`;
}

export interface IpResult { code: number | null; stdout: string; stderr: string }
export type IpRunner = (args: string[]) => Promise<IpResult>;

/** Spawns `ip` (async: run's serving paths never block on it). */
export const spawnIp: IpRunner = (args) => new Promise((resolve) => {
  const p = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  p.on('error', (e) => resolve({ code: null, stdout, stderr: stderr + e.message }));
  p.on('close', (code) => resolve({ code, stdout, stderr }));
});

export interface Guard {
  pid?: number;
  /** Run stops: the guard flushes now. */
  close(): void;
  /** Run hands over: the guard keeps the routes for its grace time (a new run ends it sooner). */
  handover(): void;
}

/** The guard process: its own process group (a terminal's ^C to run does not kill it first). */
export function spawnGuard(s: AnnounceSettings, graceS = 10): Guard {
  const p = spawn('sh', ['-c', guardScript(s, graceS), GUARD_NAME], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  p.on('error', () => undefined);
  p.stdin.on('error', () => undefined);
  p.unref();
  (p.stdin as unknown as { unref?: () => void }).unref?.();
  return { ...(p.pid !== undefined ? { pid: p.pid } : {}), close: () => p.stdin.end(), handover: () => p.stdin.end('handover\n') };
}

/** Ends the guard an earlier run left lingering after a handover (its pid file names it). */
export function endOldGuard(pidFile: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return undefined;
  try {
    // Only a guard: pids are reused, and the group kill must never hit anything else.
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(GUARD_NAME)) return undefined;
    process.kill(-pid, 'SIGTERM');
    return pid;
  } catch {
    return undefined;
  }
}

export interface Announcement { vip: string; announced: boolean; reason: AnnounceReason; since: string; error?: string }

export interface AnnouncerOptions {
  log: Logger;
  ip?: IpRunner;
  guard?: (s: AnnounceSettings, graceS: number) => Guard;
  /** Where the guard's pid is kept, so that the run after a handover can end it (state dir). */
  guardPidFile?: string;
  /** Seconds a handed-over guard keeps the routes for a new run (default 10). */
  handoverGraceS?: number;
  now?: () => Date;
}

export class Announcer {
  private readonly ip: IpRunner;
  private readonly installed = new Set<string>();
  private readonly rows = new Map<string, Announcement>();
  private want: VipDecision[] = [];
  private chain: Promise<void> = Promise.resolve();
  private pending = false;
  private guard?: Guard;

  constructor(readonly settings: AnnounceSettings, private readonly opts: AnnouncerOptions) {
    this.ip = opts.ip ?? spawnIp;
  }

  /** Learns the routes already in the table (a restart keeps what it still wants) and starts the guard. */
  async start(): Promise<void> {
    for (const f of [4, 6] as const) {
      const r = await this.ip(listArgs(this.settings, f));
      if (r.code !== 0 || r.stdout.trim() === '') continue;
      try {
        for (const x of JSON.parse(r.stdout) as { dst?: string }[]) if (x.dst) this.installed.add(x.dst.replace(/\/(32|128)$/, ''));
      } catch {
        // not JSON (an old ip): the first sync replaces what it wants; strays go at stop
      }
    }
    // Our guard first, then the old one ends: at no moment is nobody guarding the routes.
    this.guard = (this.opts.guard ?? spawnGuard)(this.settings, this.opts.handoverGraceS ?? 10);
    if (this.opts.guardPidFile) {
      const old = endOldGuard(this.opts.guardPidFile);
      if (old !== undefined) this.opts.log.info({ event: 'took-over-routes', guard: old }, `took over the announced routes from the previous run's guard (pid ${old})`);
      if (this.guard.pid !== undefined) {
        try {
          writeFileSync(this.opts.guardPidFile, `${this.guard.pid}\n`);
        } catch {
          // no state directory: no handover possible, the routes are still guarded
        }
      }
    }
  }

  /**
   * Hands the routes over to the next run (`run --takeover`, SIGUSR2): nothing is withdrawn; the
   * guard keeps them for its grace time and flushes them unless a new run ends it first.
   */
  async handover(): Promise<void> {
    await this.chain;
    this.guard?.handover();
  }

  /** Wanted state from `input`; the routes follow asynchronously (the latest wanted state wins). */
  update(input: AnnounceInput): Promise<void> {
    this.want = decideAnnouncements(input);
    return this.kick();
  }

  private kick(): Promise<void> {
    if (this.pending) return this.chain;
    this.pending = true;
    this.chain = this.chain.then(async () => {
      this.pending = false;
      await this.sync(this.want);
    });
    return this.chain;
  }

  private async sync(want: VipDecision[]): Promise<void> {
    const seen = new Set<string>();
    for (const d of want) {
      seen.add(d.vip);
      let error: string | undefined;
      if (d.announce !== this.installed.has(d.vip)) {
        const r = await this.ip(routeArgs(this.settings, d.announce ? 'replace' : 'del', d.vip));
        if (r.code === 0 || (!d.announce && /No such process|not found/i.test(r.stderr))) {
          if (d.announce) this.installed.add(d.vip);
          else this.installed.delete(d.vip);
        } else {
          error = `ip route ${d.announce ? 'replace' : 'del'}: ${r.stderr.trim() || `exit ${r.code}`}`;
        }
      }
      this.record(d, error);
    }
    // VIPs no longer configured, and strays of an earlier run.
    for (const vip of [...this.installed]) {
      if (seen.has(vip)) continue;
      const r = await this.ip(routeArgs(this.settings, 'del', vip));
      if (r.code === 0 || /No such process|not found/i.test(r.stderr)) this.installed.delete(vip);
      if (this.rows.has(vip) && !this.installed.has(vip)) {
        this.rows.delete(vip);
        this.opts.log.info({ event: 'withdrawn', vip, reason: 'removed' }, `${vip}: withdrawn (no longer configured)`);
      }
    }
  }

  private record(d: VipDecision, error?: string): void {
    const announced = this.installed.has(d.vip);
    const was = this.rows.get(d.vip);
    if (was && was.announced === announced && was.reason === d.reason && was.error === error) return;
    const row: Announcement = { vip: d.vip, announced, reason: d.reason, since: was?.announced === announced ? was.since : (this.opts.now?.() ?? new Date()).toISOString() };
    if (error) row.error = error;
    this.rows.set(d.vip, row);
    if (error) this.opts.log.error({ event: 'announce-failed', vip: d.vip, error }, `${d.vip}: cannot ${d.announce ? 'announce' : 'withdraw'}: ${error}`);
    else if (announced) this.opts.log.info({ event: 'announced', vip: d.vip, reason: d.reason, table: this.settings.table }, `${d.vip}: announced (${d.reason})`);
    else this.opts.log.warn({ event: 'withdrawn', vip: d.vip, reason: d.reason, table: this.settings.table }, `${d.vip}: withdrawn (${d.reason})`);
  }

  /** Announcement state per VIP (status and metrics). */
  state(): Announcement[] {
    return [...this.rows.values()].sort((a, b) => compareAddresses(a.vip, b.vip));
  }

  /** Withdraws every VIP and ends the guard (run stops; the data plane may keep forwarding). */
  async stop(): Promise<void> {
    this.want = this.want.map((d) => ({ ...d, announce: false, reason: 'stopped' as const }));
    await this.kick();
    this.guard?.close();
  }
}

/** Options of `lvs-xdp announce bird-config`. */
export interface BirdConfigOptions {
  routerId: string;
  asn: number;
  neighbors: { address: string; asn: number }[];
  table: number;
  protocol: number;
  holdTime: number;
  keepaliveTime: number;
  /** BFD on the sessions (tx/rx interval in ms, down after 3 missed): a dead link is seen in 3 intervals, not the hold time. */
  bfdMs?: number;
  /** BIRD's `error wait time` (s, min and max): how long a session that failed waits before it restarts (BIRD's default 60, 300). */
  errorWait?: [number, number];
}

/**
 * A BIRD 2 configuration for one director: the kernel protocol learns lvs-xdp's routes from the
 * table (`learn`: they are alien to BIRD; only the protocol number lvs-xdp uses), BGP exports
 * exactly those, with this host as next hop.
 */
export function birdConfig(o: BirdConfigOptions): string {
  const lines = [
    `# BIRD 2 configuration for lvs-xdp VIP announcement (lvs-xdp announce bird-config).`,
    `# lvs-xdp run (settings.announce: { table: ${o.table}, protocol: ${o.protocol} }) keeps one route per`,
    `# announced VIP in kernel table ${o.table}; BIRD learns them and exports them over BGP.`,
    `router id ${o.routerId};`,
    '',
    'protocol device { scan time 10; }',
    '',
  ];
  for (const f of [4, 6] as const) {
    lines.push(
      `protocol kernel lvs_xdp${f} {`,
      `  kernel table ${o.table};`,
      '  learn;            # lvs-xdp\'s routes are alien to BIRD: learn them',
      '  scan time 10;     # netlink notifies changes at once; the scan is a fallback',
      `  ipv${f} { import where krt_source = ${o.protocol}; export none; };`,
      '}',
      '',
    );
  }
  if (o.bfdMs !== undefined) {
    lines.push(`protocol bfd lvs_bfd { interface "*" { min rx interval ${o.bfdMs} ms; min tx interval ${o.bfdMs} ms; multiplier 3; }; }`, '');
  }
  o.neighbors.forEach((n, i) => {
    const f = isIPv6(n.address) ? 6 : 4;
    lines.push(
      `protocol bgp upstream${i + 1} {`,
      `  local as ${o.asn};`,
      `  neighbor ${n.address} as ${n.asn};`,
      `  hold time ${o.holdTime}; keepalive time ${o.keepaliveTime}; connect retry time 1;${o.bfdMs !== undefined ? ' bfd on;' : ''}`,
      ...(o.errorWait ? [`  error wait time ${o.errorWait[0]}, ${o.errorWait[1]};   # back soon after a link or BFD failure`] : []),
      '  graceful restart off; long lived graceful restart off;   # a dead director\'s routes must not linger',
      `  ipv${f} { import none; export where proto = "lvs_xdp${f}"; next hop self; };`,
      '}',
      '',
    );
  });
  return lines.join('\n');
}

/** The decision input from run's state (rows only while attached: a detached director has none). */
export function announceInput(cfg: DirectorConfig, eff: Effective, attached: boolean, rows: () => HealthRow[], directorDrained = false): AnnounceInput {
  return {
    attached, directorDrained, rows: attached ? rows() : [],
    services: cfg.services.filter((s) => !s.fwmark).map((s) => ({ id: serviceId(s), vip: s.vip, sorryActive: eff.services.get(serviceId(s))?.sorryActive ?? false })),
  };
}

/** The announcer `settings.announce` asks for, if any. */
export function announcerFor(cfg: DirectorConfig, opts: AnnouncerOptions): Announcer | undefined {
  const a = cfg.settings?.announce;
  return a ? new Announcer({ table: a.table, protocol: a.protocol ?? DEFAULT_ANNOUNCE_PROTOCOL }, opts) : undefined;
}
