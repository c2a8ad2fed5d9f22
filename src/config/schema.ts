/**
 * Shape of the declarative config file (YAML or JSON). Keys are kebab-case like the CLI's options.
 * zod checks structure and types only; value rules (ranges, addresses, scheduler names, family
 * rules) are the model's, so the config file and ipvsadm rules get the same messages.
 *
 *   settings:                       # optional, director-wide
 *     tunnel: { source4: 10.0.0.5, source6: "2001:db8::5", mtu: 1500, ttl: 64 }
 *     hash-seed: 12345
 *     timeouts: { tcp: 900, tcp-fin: 120, udp: 300 }
 *     expire-nodest-conn: false       # IPVS sysctls of the same names
 *     expire-quiescent-template: false
 *     announce: { table: 201, protocol: 201 }   # lvs-xdp run: VIP routes for BIRD (README)
 *   marks:                          # optional: firewall marks as lvs-xdp classifies them
 *     - mark: 1
 *       match:
 *         - { protocol: tcp, address: 10.0.0.1, ports: "80,443" }   # ports omitted: all
 *         - { protocol: tcp, address: 10.0.1.0/24, ports: 8000-8099 }
 *   services:
 *     - fwmark: 1                   # a firewall-mark service (family: ipv6 for an IPv6 one)
 *       scheduler: rr
 *       persistence: 300
 *       realservers: [{ address: 192.168.1.10 }]
 *     - vip: 10.0.0.1
 *       port: 80                    # 0 = all ports
 *       protocol: tcp               # default tcp
 *       scheduler: mh               # default mh (ipvsadm -A without -s: wlc)
 *       flags: [mh-port]
 *       persistence: { timeout: 300, netmask: 255.255.255.0 }   # or just: persistence: 300
 *       ops: false
 *       table-size: 4093             # default for mh / sh / dh: by the number of realservers
 *       health-check: { type: http, path: /healthz, interval: 2s }   # defaults for its realservers
 *       realservers:
 *         - { address: 192.168.1.10, weight: 1, method: dr, mac: "02:00:00:00:00:0a" }
 *         - { address: 192.168.1.11, health-check: { type: tcp, port: 8080 } }   # merged over the service's
 *         - { address: 192.168.1.12, upper-threshold: 500, lower-threshold: 400 } # ipvsadm -x / -y
 *
 * Health checks (used by `lvs-xdp run`, see src/ops/spec.ts and README "Operations") are checked
 * here for shape only and kept in the model as written (kebab-case keys).
 */
import { z } from 'zod';
import { isIP } from 'node:net';
import { isMulticast } from '../ipvsadm/daemon.js';
import { parsePorts } from '../model/fwmark.js';

const int = z.number().int();

export const persistenceSchema = z.union([
  int,
  z.strictObject({ timeout: int.optional(), netmask: z.union([z.string(), int]).optional() }),
]);

/** "500ms", "2s", "1.5s", "1m", or a number of seconds. */
export const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m)$/;
const duration = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  const ok = typeof v === 'number' ? Number.isFinite(v) && v > 0 : DURATION_RE.test(v) && Number(DURATION_RE.exec(v)![1]) > 0;
  if (!ok) ctx.addIssue({ code: 'custom', message: `expected a duration > 0: seconds (2, 0.5) or "500ms", "2s", "1m"; got ${JSON.stringify(v)}` });
});
const count = int.min(1).max(1000);

export const HEALTH_CHECK_TYPES = ['tcp', 'http', 'https', 'udp', 'exec', 'none'] as const;

/** Keys that only some check types use: an error where `type` is set at the same level and differs. */
const TYPE_KEYS: Readonly<Record<string, readonly string[]>> = {
  path: ['http', 'https'], host: ['http', 'https'], 'expect-status': ['http', 'https'], 'expect-body': ['http', 'https'],
  digest: ['http', 'https'], urls: ['http', 'https'],
  'tls-verify': ['https'], payload: ['udp'], expect: ['udp'], command: ['exec'],
};

/** One HTTP status (200) or an inclusive range ("200-299"), as keepalived's status_code. */
export const STATUS_RANGE_RE = /^([1-5]\d\d)-([1-5]\d\d)$/;
const statusItem = z.union([
  int.min(100).max(599),
  z.string().superRefine((v, ctx) => {
    const m = STATUS_RANGE_RE.exec(v);
    if (!m) ctx.addIssue({ code: 'custom', message: `expected a status (200) or a range ("200-299"), got ${JSON.stringify(v)}` });
    else if (Number(m[1]) > Number(m[2])) ctx.addIssue({ code: 'custom', message: `range ${v} runs backwards` });
  }),
]);
const expectStatus = z.union([statusItem, z.array(statusItem).min(1)]);
const regex = z.string().superRefine((v, ctx) => {
  try {
    new RegExp(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `not a regular expression: ${(e as Error).message}` });
  }
});
/** keepalived's `digest`: the MD5 of the whole body, 32 hex digits (genhash prints it). */
const md5 = z.string().regex(/^[0-9a-fA-F]{32}$/, 'expected an MD5 digest: 32 hex digits');
const argv = z.array(z.string().min(1)).min(1);

/** One URL of an http(s) check (several: every one must pass, as keepalived's url blocks). */
export const urlCheckSchema = z.strictObject({
  path: z.string().startsWith('/'),
  host: z.string().min(1).optional(),
  'expect-status': expectStatus.optional(),
  'expect-body': regex.optional(),
  digest: md5.optional(),
});

/** Commands run on state changes (argv, never a shell); a realserver's block has the realserver ones only. */
export const NOTIFY_EVENTS = ['realserver-up', 'realserver-down', 'service-up', 'service-down', 'quorum-up', 'quorum-down'] as const;
export const REALSERVER_NOTIFY_EVENTS = ['realserver-up', 'realserver-down'] as const;
const notifySchema = z.strictObject(Object.fromEntries(NOTIFY_EVENTS.map((e) => [e, argv.optional()])) as Record<(typeof NOTIFY_EVENTS)[number], z.ZodOptional<typeof argv>>);
const realserverNotifySchema = z.strictObject(Object.fromEntries(REALSERVER_NOTIFY_EVENTS.map((e) => [e, argv.optional()])) as Record<(typeof REALSERVER_NOTIFY_EVENTS)[number], z.ZodOptional<typeof argv>>);

const healthCheckFields = {
  type: z.enum(HEALTH_CHECK_TYPES).optional(),
  port: int.min(1).max(65535).optional(),
  interval: duration.optional(),
  timeout: duration.optional(),
  rise: count.optional(),
  fall: count.optional(),
  initial: z.enum(['up', 'down']).optional(),
  via: z.enum(['direct', 'forwarding']).optional(),
  'on-down': z.enum(['finish', 'cut']).optional(),
  path: z.string().startsWith('/').optional(),
  host: z.string().min(1).optional(),
  'expect-status': expectStatus.optional(),
  'expect-body': regex.optional(),
  digest: md5.optional(),
  urls: z.array(urlCheckSchema).min(1).optional(),
  'tls-verify': z.boolean().optional(),
  payload: z.string().optional(),
  expect: z.string().optional(),
  command: argv.optional(),
  // After a failure of an up realserver, the next check (a retry) comes this soon instead of
  // after `interval`, until `fall` failures in a row take it down (keepalived's delay_before_retry).
  'delay-before-retry': duration.optional(),
  // The first check comes after a random delay of up to this (0: at once); keepalived's warmup.
  warmup: z.union([z.literal(0), duration]).optional(),
};

function typeKeysRefine(v: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const type = v.type as string | undefined;
  if (type === undefined) return;
  for (const [key, types] of Object.entries(TYPE_KEYS)) {
    if (v[key] !== undefined && !types.includes(type)) {
      ctx.addIssue({ code: 'custom', path: [key], message: `${key} applies to type ${types.join(' / ')}, not ${type}` });
    }
  }
  if (type === 'exec' && v.command === undefined) ctx.addIssue({ code: 'custom', path: ['type'], message: 'type exec needs command (an argv list, run without a shell)' });
}

/** `urls:` lists the URLs itself: the single-URL keys beside it would be ambiguous. */
function urlsRefine(v: Record<string, unknown>, ctx: z.RefinementCtx): void {
  if (v.urls === undefined) return;
  for (const key of ['path', 'expect-status', 'expect-body', 'digest']) {
    if (v[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${key} beside urls: put it in the url it applies to` });
  }
}

export const sorryServerSchema = z.strictObject({
  address: z.string(),
  method: z.string().optional(),
  mac: z.string().optional(),
  'next-hop': z.string().optional(),
  ifname: z.string().optional(),
});

/** A realserver's health check: merged key by key over its service's. */
export const realserverHealthCheckSchema = z.strictObject({ ...healthCheckFields, notify: realserverNotifySchema.optional() }).superRefine((v, ctx) => {
  typeKeysRefine(v, ctx);
  urlsRefine(v, ctx);
});

/** A service's health check: the defaults of its realservers, and what happens when all are down. */
export const serviceHealthCheckSchema = z.strictObject({
  ...healthCheckFields,
  'all-down': z.enum(['keep-last', 'sorry-server']).optional(),
  'sorry-server': sorryServerSchema.optional(),
  notify: notifySchema.optional(),
  // keepalived's quorum: the service is up while the weights of its up realservers add up to at
  // least `quorum`; `hysteresis` dampens flaps (gained at quorum + hysteresis, lost below
  // quorum - hysteresis). Lost with all-down: sorry-server, the sorry server takes every new flow.
  quorum: int.min(1).max(0x7fffffff).optional(),
  hysteresis: int.min(0).max(0x7fffffff).optional(),
}).superRefine((v, ctx) => {
  typeKeysRefine(v, ctx);
  urlsRefine(v, ctx);
  if (v.hysteresis !== undefined && v.quorum === undefined) ctx.addIssue({ code: 'custom', path: ['hysteresis'], message: 'hysteresis applies to a quorum: set quorum too' });
  if (v['all-down'] === 'sorry-server' && !v['sorry-server']) {
    ctx.addIssue({ code: 'custom', path: ['all-down'], message: 'all-down: sorry-server needs sorry-server: { address: ... }' });
  }
});

export const realserverSchema = z.strictObject({
  address: z.string(),
  port: int.optional(),
  weight: int.optional(),
  method: z.string().optional(),
  mac: z.string().optional(),
  'next-hop': z.string().optional(),
  ifname: z.string().optional(),
  'upper-threshold': int.optional(),
  'lower-threshold': int.optional(),
  'health-check': realserverHealthCheckSchema.optional(),
});

export const serviceSchema = z.strictObject({
  // A firewall-mark service has fwmark (and family) instead of vip and port.
  fwmark: int.optional(),
  family: z.enum(['ipv4', 'ipv6']).optional(),
  vip: z.string().optional(),
  port: int.optional(),
  protocol: z.string().optional(),
  scheduler: z.string().optional(),
  flags: z.array(z.string()).optional(),
  persistence: persistenceSchema.optional(),
  ops: z.boolean().optional(),
  'table-size': int.optional(),
  'health-check': serviceHealthCheckSchema.optional(),
  realservers: z.array(realserverSchema).optional(),
}).superRefine((v, ctx) => {
  if (v.fwmark !== undefined) {
    for (const k of ['vip', 'port'] as const) {
      if (v[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `a firewall-mark service (fwmark) has no ${k}: its mark's definition (marks:) says which packets are its` });
    }
  } else {
    if (v.vip === undefined) ctx.addIssue({ code: 'custom', path: ['vip'], message: 'missing (expected a string)' });
    if (v.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'missing (expected a number)' });
    if (v.family !== undefined) ctx.addIssue({ code: 'custom', path: ['family'], message: 'family is for a firewall-mark service (the VIP gives the family)' });
  }
});

/** Destination ports of a mark rule: 80, "80,443", "8000-8099" / "8000:8099", or a list of those. */
const portsSchema = z.union([int, z.string(), z.array(z.union([int, z.string()]))]).superRefine((v, ctx) => {
  for (const p of Array.isArray(v) ? v : [v]) {
    const r = parsePorts(String(p));
    if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
  }
});

/** A firewall mark: the rules (iptables -t mangle ... -j MARK) whose packets carry it. */
export const markSchema = z.strictObject({
  mark: int,
  match: z.array(z.strictObject({
    protocol: z.string().optional(),
    address: z.string(),
    ports: portsSchema.optional(),
  })),
});

export const settingsSchema = z.strictObject({
  tunnel: z.strictObject({
    source4: z.string().optional(),
    source6: z.string().optional(),
    mtu: int.optional(),
    ttl: int.optional(),
  }).optional(),
  'hash-seed': int.optional(),
  timeouts: z.strictObject({ tcp: int.optional(), 'tcp-fin': int.optional(), udp: int.optional() }).optional(),
  'expire-nodest-conn': z.boolean().optional(),
  'expire-quiescent-template': z.boolean().optional(),
  // `lvs-xdp run` announces VIPs through a routing daemon (src/ops/announce.ts): the kernel
  // table its routes go to (not 0 or the kernel's 253-255) and their protocol number.
  announce: z.strictObject({
    table: int.min(1).max(0xfffffff0).refine((t) => t < 253 || t > 255, 'tables 253-255 are the kernel\'s (default, main, local)'),
    protocol: int.min(5).max(255).optional(),
    // BIRD's control socket: run reads the BGP sessions' state from it for status and metrics.
    'bird-socket': z.string().min(1).refine((p) => p.startsWith('/'), 'an absolute path').optional(),
  }).optional(),
  // `lvs-xdp run`'s connection sync daemons (IPVS's protocol), as ipvsadm --start-daemon takes them.
  sync: z.array(z.strictObject({
    role: z.enum(['master', 'backup']),
    interface: z.string().min(1).max(15).regex(/^[^\s/]+$/, 'an interface name'),
    syncid: int.min(0).max(255).optional(),
    group: z.string().refine(isMulticast, 'a multicast group (224.0.0.0/4 or ff00::/8)').optional(),
    port: int.min(1).max(65535).optional(),
    ttl: int.min(1).max(255).optional(),
    maxlen: int.min(1).max(65535 - 28).optional(),
    peers: z.array(z.string().refine((p) => isIP(p) !== 0, 'an IPv4 or IPv6 address')).optional(),
    multicast: z.boolean().optional(),
    interval: z.number().min(0.01).max(60).optional(),
    refresh: int.min(1).max(86400).optional(),
  })).refine((l) => new Set(l.map((d) => d.role)).size === l.length, 'at most one master and one backup').optional(),
});

export const configFileSchema = z.strictObject({
  settings: settingsSchema.optional(),
  marks: z.array(markSchema).optional(),
  // Required: a file without it (empty, truncated, settings only) must not mean "no services".
  services: z.array(serviceSchema),
});

export type ConfigFile = z.infer<typeof configFileSchema>;
export type ServiceEntry = z.infer<typeof serviceSchema>;
export type MarkEntry = z.infer<typeof markSchema>;
export type RealserverEntry = z.infer<typeof realserverSchema>;
export type HealthCheckEntry = z.infer<typeof serviceHealthCheckSchema>;

// In a module of its own so that the diff (every change command) does not load zod.
export { FILE_KEY } from './file-keys.js';
