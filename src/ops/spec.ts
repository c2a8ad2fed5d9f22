/**
 * Health-check settings as `lvs-xdp run` uses them: the file's `health-check:` blocks (kept in
 * the model as written, kebab-case, shape-checked by src/config/schema.ts) merged per
 * realserver (realserver keys over the service's) and normalized (milliseconds, defaults).
 * Pure: no I/O.
 */
import { ConfigError } from '../errors.js';
import { canonicalAddress, canonicalMac, familyOf } from '../model/address.js';
import { serviceId, type DirectorConfig, type Realserver, type VirtualService } from '../model/types.js';
import { DURATION_RE, STATUS_RANGE_RE } from '../config/schema.js';

export type CheckType = 'tcp' | 'http' | 'https' | 'udp' | 'exec';
export type OnDown = 'finish' | 'cut';
export type AllDown = 'keep-last' | 'sorry-server';

export interface CheckSpec {
  type: CheckType;
  /** Port probed (default: the realserver's, i.e. the service's; 80 / 443 for an all-ports service). */
  port: number;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  initial: 'up' | 'down';
  /** direct: the realserver's own address; forwarding: the VIP, sent the way the data plane sends it. */
  via: 'direct' | 'forwarding';
  /** `via` was not written: forwarding where it works (a realserver without the VIP is then
   *  down), else direct with the reason in viaFallback; check.ts falls back at run time too. */
  viaDefault?: boolean;
  viaFallback?: string;
  onDown: OnDown;
  path: string;
  host?: string;
  /** Accepted HTTP statuses; empty (and no ranges) = 200-399. */
  expectStatus: number[];
  /** Accepted inclusive status ranges ("200-299"), besides expectStatus. */
  expectStatusRanges?: [number, number][];
  expectBody?: string;
  /** MD5 of the whole body, lower-case hex (keepalived's digest). */
  digest?: string;
  /** Several URLs (http(s)): every one must pass; path / expectStatus / expectBody / digest then unused. */
  urls?: UrlSpec[];
  /** After a failure of an up realserver, the next check (a retry) comes this long after the failed one ended, instead of intervalMs after it started. */
  delayBeforeRetryMs?: number;
  /** The first check comes after a random delay of up to this (0: at once); unset: spread over min(interval, 1 s). */
  warmupMs?: number;
  /** Commands run when this realserver goes up / down (argv, placeholders: see notify.ts). */
  notify?: { up?: string[]; down?: string[] };
  tlsVerify: boolean;
  payload: string;
  expect?: string;
  command?: string[];
}

/** One URL of a several-URL http(s) check. */
export interface UrlSpec {
  path: string;
  host?: string;
  expectStatus: number[];
  expectStatusRanges?: [number, number][];
  expectBody?: string;
  digest?: string;
}

export interface ServiceNotify { up?: string[]; down?: string[]; quorumUp?: string[]; quorumDown?: string[] }

export interface ServicePolicy {
  allDown: AllDown;
  sorry?: Realserver;
  /** keepalived's quorum: up while the weights of the up realservers add up to >= quorum (hysteresis: see health.ts). */
  quorum?: { quorum: number; hysteresis: number };
  notify?: ServiceNotify;
}

/** One checked realserver of one service. */
export interface Target {
  /** `${serviceId}/${address}`: the key of its health state. */
  key: string;
  service: string;
  vip: string;
  vport: number;
  protocol: 'tcp' | 'udp';
  address: string;
  method: Realserver['method'];
  spec: CheckSpec;
}

export interface HealthPlan {
  targets: Target[];
  policies: Map<string, ServicePolicy>;
}

export const DEFAULTS = { intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3 } as const;

export function durationMs(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? Math.round(v * 1000) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = DURATION_RE.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
  return ms > 0 ? Math.round(ms) : undefined;
}

type Raw = Record<string, unknown>;

function asRaw(v: unknown): Raw | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : undefined;
}

export function targetKey(svc: Pick<VirtualService, 'protocol' | 'vip' | 'port'>, address: string): string {
  return `${serviceId(svc)}/${address}`;
}

/** `expect-status` as written (200, "200-299" or a list of them) as single codes and ranges. */
export function statusRules(v: unknown): { codes: number[]; ranges: [number, number][] } {
  const codes: number[] = [];
  const ranges: [number, number][] = [];
  for (const x of v === undefined ? [] : Array.isArray(v) ? v : [v]) {
    if (typeof x === 'number') {
      codes.push(x);
      continue;
    }
    const m = STATUS_RANGE_RE.exec(String(x));
    if (m) ranges.push([Number(m[1]), Number(m[2])]);
  }
  return { codes, ranges };
}

function urlSpec(u: Raw): UrlSpec {
  const st = statusRules(u['expect-status']);
  const out: UrlSpec = { path: String(u.path), expectStatus: st.codes };
  if (st.ranges.length) out.expectStatusRanges = st.ranges;
  if (typeof u.host === 'string') out.host = u.host;
  if (typeof u['expect-body'] === 'string') out.expectBody = u['expect-body'];
  if (typeof u.digest === 'string') out.digest = u.digest.toLowerCase();
  return out;
}

function fail(field: string, message: string): never {
  throw new ConfigError(message, { field });
}

/** The merged, normalized check of a realserver, or undefined when it is not checked. */
export function checkSpecFor(svc: VirtualService, rs: Realserver, where = 'health-check'): CheckSpec | undefined {
  const s = asRaw(svc.healthCheck);
  const r = asRaw(rs.healthCheck);
  if (!s && !r) return undefined;
  const m: Raw = { ...(s ?? {}), ...(r ?? {}) };
  // notify merges one level deeper: a realserver's realserver-down keeps the service's realserver-up.
  const notifyRaw: Raw = { ...(asRaw(s?.notify) ?? {}), ...(asRaw(r?.notify) ?? {}) };
  const type = (m.type ?? 'tcp') as CheckType | 'none';
  if (type === 'none') return undefined;
  const defPort = rs.port || (type === 'https' ? 443 : type === 'http' ? 80 : 0);
  const port = (m.port as number | undefined) ?? defPort;
  if (!port && type !== 'exec') fail(where, `an all-ports${svc.fwmark ? ' (firewall-mark)' : ''} service needs health-check port: for ${type} checks`);
  const intervalMs = durationMs(m.interval) ?? DEFAULTS.intervalMs;
  const timeoutMs = durationMs(m.timeout) ?? Math.min(DEFAULTS.timeoutMs, intervalMs);
  if (timeoutMs > intervalMs) fail(`${where}.timeout`, `timeout (${timeoutMs} ms) longer than interval (${intervalMs} ms)`);
  // Default: the forwarding path wherever it can work (every DR / Tun check that probes a port:
  // an all-ports service must name one anyway, above).
  // Without `via`: forwarding where it can work, else direct and why (the status shows it).
  const fallback = m.via !== undefined ? undefined
    : type === 'exec' ? 'an exec check runs a command, it cannot be sent through the forwarding path'
      : svc.fwmark ? 'a firewall-mark service has no VIP to probe through'
        : rs.method !== 'dr' && rs.method !== 'tun' ? `the forwarding path is probed for LVS-DR and LVS-Tun realservers only (${rs.address} is ${rs.method})`
          : svc.port === 0 && m.port === undefined ? 'an all-ports service has no port to probe the VIP on' : undefined;
  const via = (m.via ?? (fallback ? 'direct' : 'forwarding')) as CheckSpec['via'];
  if (via === 'forwarding') {
    if (rs.method !== 'dr' && rs.method !== 'tun') fail(`${where}.via`, `via: forwarding is implemented for LVS-DR and LVS-Tun realservers only (${rs.address} is ${rs.method})`);
    if (type === 'exec') fail(`${where}.via`, 'via: forwarding probes the VIP itself: use tcp, http(s) or udp, not exec');
    if (svc.fwmark) fail(`${where}.via`, 'via: forwarding probes the VIP itself, and a firewall-mark service has none: probe the realserver directly');
    if (svc.port === 0 && m.port === undefined) fail(`${where}.port`, 'via: forwarding on an all-ports service needs port:');
  }
  if (type === 'exec' && !Array.isArray(m.command)) fail(`${where}.command`, 'type exec needs command (an argv list)');
  const st = statusRules(m['expect-status']);
  const spec: CheckSpec = {
    type, port, intervalMs, timeoutMs,
    rise: (m.rise as number | undefined) ?? DEFAULTS.rise,
    fall: (m.fall as number | undefined) ?? DEFAULTS.fall,
    initial: (m.initial ?? 'up') as CheckSpec['initial'],
    via,
    onDown: (m['on-down'] ?? 'finish') as OnDown,
    path: (m.path as string | undefined) ?? '/',
    expectStatus: st.codes,
    tlsVerify: (m['tls-verify'] as boolean | undefined) ?? false,
    payload: (m.payload as string | undefined) ?? '',
  };
  if (m.via === undefined) spec.viaDefault = true;
  if (fallback) spec.viaFallback = fallback;
  if (typeof m.host === 'string') spec.host = m.host;
  if (typeof m['expect-body'] === 'string') spec.expectBody = m['expect-body'];
  if (typeof m.expect === 'string') spec.expect = m.expect;
  if (Array.isArray(m.command)) spec.command = [...(m.command as string[])];
  if (st.ranges.length) spec.expectStatusRanges = st.ranges;
  if (typeof m.digest === 'string') spec.digest = m.digest.toLowerCase();
  if (Array.isArray(m.urls)) spec.urls = (m.urls as Raw[]).map(urlSpec);
  if (m['delay-before-retry'] !== undefined) spec.delayBeforeRetryMs = durationMs(m['delay-before-retry'])!;
  if (m.warmup !== undefined) spec.warmupMs = m.warmup === 0 ? 0 : durationMs(m.warmup)!;
  const up = notifyRaw['realserver-up'];
  const down = notifyRaw['realserver-down'];
  if (Array.isArray(up) || Array.isArray(down)) {
    spec.notify = {};
    if (Array.isArray(up)) spec.notify.up = [...(up as string[])];
    if (Array.isArray(down)) spec.notify.down = [...(down as string[])];
  }
  return spec;
}

function policyFor(svc: VirtualService, where: string): ServicePolicy {
  const s = asRaw(svc.healthCheck) ?? {};
  const sorryRaw = asRaw(s['sorry-server']);
  const allDown = (s['all-down'] ?? (sorryRaw ? 'sorry-server' : 'keep-last')) as AllDown;
  const p: ServicePolicy = { allDown };
  if (typeof s.quorum === 'number') p.quorum = { quorum: s.quorum, hysteresis: (s.hysteresis as number | undefined) ?? 0 };
  const n = asRaw(s.notify);
  if (n) {
    const notify: ServiceNotify = {};
    if (Array.isArray(n['service-up'])) notify.up = [...(n['service-up'] as string[])];
    if (Array.isArray(n['service-down'])) notify.down = [...(n['service-down'] as string[])];
    if (Array.isArray(n['quorum-up'])) notify.quorumUp = [...(n['quorum-up'] as string[])];
    if (Array.isArray(n['quorum-down'])) notify.quorumDown = [...(n['quorum-down'] as string[])];
    if (Object.keys(notify).length) p.notify = notify;
  }
  if (sorryRaw) {
    const address = canonicalAddress(String(sorryRaw.address));
    if (!address) fail(`${where}.sorry-server.address`, `not an IP address: ${JSON.stringify(sorryRaw.address)}`);
    const method = (sorryRaw.method ?? 'dr') as Realserver['method'];
    if (method !== 'dr' && method !== 'tun') fail(`${where}.sorry-server.method`, `method dr or tun, not ${JSON.stringify(method)}`);
    if (method === 'dr' && familyOf(address) !== familyOf(svc.vip)) fail(`${where}.sorry-server.address`, 'a DR sorry server must have the VIP\'s address family');
    if (svc.realservers.some((r) => r.address === address)) fail(`${where}.sorry-server.address`, `${address} is also a realserver of ${serviceId(svc)}`);
    const sorry: Realserver = { address, port: svc.port, weight: 1, method };
    if (sorryRaw.mac !== undefined) {
      const mac = canonicalMac(String(sorryRaw.mac));
      if (!mac) fail(`${where}.sorry-server.mac`, `not a MAC address: ${JSON.stringify(sorryRaw.mac)}`);
      sorry.mac = mac;
    }
    if (sorryRaw['next-hop'] !== undefined) sorry.nextHop = String(sorryRaw['next-hop']);
    if (sorryRaw.ifname !== undefined) sorry.ifname = String(sorryRaw.ifname);
    p.sorry = sorry;
  }
  return p;
}

/** Every checked realserver and every service's all-down policy; ConfigError on a bad combination. */
export function healthPlan(cfg: DirectorConfig): HealthPlan {
  const targets: Target[] = [];
  const policies = new Map<string, ServicePolicy>();
  cfg.services.forEach((svc, i) => {
    policies.set(serviceId(svc), policyFor(svc, `services[${i}].health-check`));
    svc.realservers.forEach((rs, j) => {
      const where = asRaw(rs.healthCheck) ? `services[${i}].realservers[${j}].health-check` : `services[${i}].health-check`;
      const spec = checkSpecFor(svc, rs, where);
      if (!spec) return;
      targets.push({
        key: targetKey(svc, rs.address), service: serviceId(svc), vip: svc.vip, vport: svc.port, protocol: svc.protocol,
        address: rs.address, method: rs.method, spec,
      });
    });
  });
  return { targets, policies };
}

/** Whether two specs probe the same way (a reload keeps the health state of an unchanged check). */
export function sameSpec(a: CheckSpec, b: CheckSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
