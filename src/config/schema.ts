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
 *   services:
 *     - vip: 10.0.0.1
 *       port: 80                    # 0 = all ports
 *       protocol: tcp               # default tcp
 *       scheduler: mh               # default mh (ipvsadm -A without -s: wlc)
 *       flags: [mh-port]
 *       persistence: { timeout: 300, netmask: 255.255.255.0 }   # or just: persistence: 300
 *       ops: false
 *       table-size: 65537
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
  'tls-verify': ['https'], payload: ['udp'], expect: ['udp'], command: ['exec'],
};

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
  'expect-status': z.union([int.min(100).max(599), z.array(int.min(100).max(599)).min(1)]).optional(),
  'expect-body': z.string().superRefine((v, ctx) => {
    try {
      new RegExp(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `not a regular expression: ${(e as Error).message}` });
    }
  }).optional(),
  'tls-verify': z.boolean().optional(),
  payload: z.string().optional(),
  expect: z.string().optional(),
  command: z.array(z.string().min(1)).min(1).optional(),
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

export const sorryServerSchema = z.strictObject({
  address: z.string(),
  method: z.string().optional(),
  mac: z.string().optional(),
  'next-hop': z.string().optional(),
  ifname: z.string().optional(),
});

/** A realserver's health check: merged key by key over its service's. */
export const realserverHealthCheckSchema = z.strictObject(healthCheckFields).superRefine(typeKeysRefine);

/** A service's health check: the defaults of its realservers, and what happens when all are down. */
export const serviceHealthCheckSchema = z.strictObject({
  ...healthCheckFields,
  'all-down': z.enum(['keep-last', 'sorry-server']).optional(),
  'sorry-server': sorryServerSchema.optional(),
}).superRefine((v, ctx) => {
  typeKeysRefine(v, ctx);
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
  vip: z.string(),
  port: int,
  protocol: z.string().optional(),
  scheduler: z.string().optional(),
  flags: z.array(z.string()).optional(),
  persistence: persistenceSchema.optional(),
  ops: z.boolean().optional(),
  'table-size': int.optional(),
  'health-check': serviceHealthCheckSchema.optional(),
  realservers: z.array(realserverSchema).optional(),
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
  }).optional(),
});

export const configFileSchema = z.strictObject({
  settings: settingsSchema.optional(),
  // Required: a file without it (empty, truncated, settings only) must not mean "no services".
  services: z.array(serviceSchema),
});

export type ConfigFile = z.infer<typeof configFileSchema>;
export type ServiceEntry = z.infer<typeof serviceSchema>;
export type RealserverEntry = z.infer<typeof realserverSchema>;
export type HealthCheckEntry = z.infer<typeof serviceHealthCheckSchema>;

/** Model field name -> file key, for messages and locations. */
export const FILE_KEY: Readonly<Record<string, string>> = {
  tableSize: 'table-size',
  nextHop: 'next-hop',
  upperThreshold: 'upper-threshold',
  lowerThreshold: 'lower-threshold',
  healthCheck: 'health-check',
  hashSeed: 'hash-seed',
  tcpFin: 'tcp-fin',
  expireNodestConn: 'expire-nodest-conn',
  expireQuiescentTemplate: 'expire-quiescent-template',
};
