/**
 * Notify commands: run on every state change `lvs-xdp run` sees (a realserver up or down, a
 * service up or down, its quorum gained or lost), as keepalived's notify_up / notify_down /
 * quorum_up / quorum_down. The argv runs directly, never through a shell; placeholders inside
 * arguments are replaced and the same values are passed in the environment:
 *   {event}    LVS_EVENT      realserver-up | realserver-down | service-up | service-down | quorum-up | quorum-down
 *   {service}  LVS_SERVICE    "tcp 10.0.0.1:80"
 *   {protocol} LVS_PROTOCOL   tcp | udp
 *   {vip}      LVS_VIP        {vport} LVS_VPORT
 *   {address}  LVS_REALSERVER the realserver (realserver events; empty otherwise)
 *   {port}     LVS_PORT       the checked port (realserver events; empty otherwise)
 *   {weight}   LVS_UP_WEIGHT  the sum of the weights of the service's up realservers after the change
 *   {quorum}   LVS_QUORUM     the service's quorum (1 when not set)
 *   {detail}   LVS_DETAIL     the check result that caused the change (realserver events)
 * A command gets `timeoutMs` (10 s) to end; then its process group is killed. A notify never
 * delays checks or applies: it runs in the background and its failure is only reported.
 */
import { spawn } from 'node:child_process';
import { serviceId } from '../model/types.js';
import type { HealthModel, QuorumChange, Transition } from './health.js';
import type { Target } from './spec.js';

export type NotifyEvent = 'realserver-up' | 'realserver-down' | 'service-up' | 'service-down' | 'quorum-up' | 'quorum-down';

export interface NotifyContext {
  event: NotifyEvent;
  service: string;
  protocol: string;
  vip: string;
  vport: number;
  address?: string;
  port?: number;
  upWeight: number;
  quorum: number;
  detail?: string;
}

const KEYS = ['event', 'service', 'protocol', 'vip', 'vport', 'address', 'port', 'weight', 'quorum', 'detail'] as const;

function values(c: NotifyContext): Record<(typeof KEYS)[number], string> {
  return {
    event: c.event, service: c.service, protocol: c.protocol, vip: c.vip, vport: String(c.vport),
    address: c.address ?? '', port: c.port === undefined ? '' : String(c.port), weight: String(c.upWeight),
    quorum: String(c.quorum), detail: c.detail ?? '',
  };
}

/** The argv with its placeholders replaced (whole arguments or parts of them). */
export function notifyArgv(argv: readonly string[], c: NotifyContext): string[] {
  const v = values(c);
  return argv.map((a) => a.replace(/\{(event|service|protocol|vip|vport|address|port|weight|quorum|detail)\}/g, (_m, k: string) => v[k as keyof typeof v]));
}

export function notifyEnv(c: NotifyContext): Record<string, string> {
  const v = values(c);
  return {
    LVS_EVENT: v.event, LVS_SERVICE: v.service, LVS_PROTOCOL: v.protocol, LVS_VIP: v.vip, LVS_VPORT: v.vport,
    LVS_REALSERVER: v.address, LVS_PORT: v.port, LVS_UP_WEIGHT: v.weight, LVS_QUORUM: v.quorum, LVS_DETAIL: v.detail,
  };
}

export interface NotifyResult { ok: boolean; detail: string }

/** Runs one notify command; resolves when it ended (or was killed), never throws. */
export function runNotify(argv: readonly string[], c: NotifyContext, timeoutMs = 10_000): Promise<NotifyResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = notifyArgv(argv, c);
    let done = false;
    let out = '';
    const finish = (r: NotifyResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...notifyEnv(c) } });
    const keep = (d: Buffer): void => { if (out.length < 400) out += d.toString('utf8'); };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      finish({ ok: false, detail: `${cmd}: killed after ${timeoutMs} ms` });
    }, timeoutMs);
    child.on('error', (e) => finish({ ok: false, detail: `${cmd}: ${(e as NodeJS.ErrnoException).code ?? e.message}` }));
    child.on('close', (code, signal) => {
      const first = out.trim().split('\n')[0]?.slice(0, 200) ?? '';
      finish(code === 0
        ? { ok: true, detail: `${cmd}: exit 0` }
        : { ok: false, detail: `${cmd}: ${signal ? `signal ${signal}` : `exit ${code}`}${first ? `: ${first}` : ''}` });
    });
  });
}

/** A command to run and its context. */
export interface Notification { argv: string[]; context: NotifyContext }

function serviceContext(model: HealthModel, id: string, event: NotifyEvent): NotifyContext | undefined {
  const svc = model.config.services.find((x) => serviceId(x) === id);
  if (!svc) return undefined;
  return { event, service: id, protocol: svc.protocol, vip: svc.vip, vport: svc.port, upWeight: model.upWeight(svc), quorum: model.policy(id)?.quorum?.quorum ?? 1 };
}

/** A realserver went up or down: its check's realserver-up / realserver-down command. */
export function realserverNotification(model: HealthModel, t: Target, tr: Transition): Notification | undefined {
  const argv = tr.to === 'up' ? t.spec.notify?.up : t.spec.notify?.down;
  const c = argv && serviceContext(model, t.service, tr.to === 'up' ? 'realserver-up' : 'realserver-down');
  return argv && c ? { argv, context: { ...c, address: t.address, port: t.spec.port, detail: tr.detail } } : undefined;
}

/** A service's quorum was gained or lost: its quorum-up / quorum-down command. */
export function quorumNotification(model: HealthModel, q: QuorumChange): Notification | undefined {
  const n = model.policy(q.service)?.notify;
  const argv = q.to === 'up' ? n?.quorumUp : n?.quorumDown;
  const c = argv && serviceContext(model, q.service, q.to === 'up' ? 'quorum-up' : 'quorum-down');
  return argv && c ? { argv, context: c } : undefined;
}

/** Every realserver with a weight went down (service-down), or one came back (service-up). */
export function serviceNotification(model: HealthModel, id: string, allDown: boolean): Notification | undefined {
  const n = model.policy(id)?.notify;
  const argv = allDown ? n?.down : n?.up;
  const c = argv && serviceContext(model, id, allDown ? 'service-down' : 'service-up');
  return argv && c ? { argv, context: c } : undefined;
}
