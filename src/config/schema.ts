/**
 * Shape of the declarative config file (YAML or JSON). Keys are kebab-case like the CLI's options.
 * zod checks structure and types only; value rules (ranges, addresses, scheduler names, family
 * rules) are the model's, so the config file and ipvsadm rules get the same messages.
 *
 *   settings:                       # optional, director-wide
 *     tunnel: { source4: 10.0.0.5, source6: "2001:db8::5", mtu: 1500, ttl: 64 }
 *     hash-seed: 12345
 *     timeouts: { tcp: 900, tcp-fin: 120, udp: 300 }
 *   services:
 *     - vip: 10.0.0.1
 *       port: 80                    # 0 = all ports
 *       protocol: tcp               # default tcp
 *       scheduler: mh               # default mh
 *       flags: [mh-port]
 *       persistence: { timeout: 300, netmask: 255.255.255.0 }   # or just: persistence: 300
 *       ops: false
 *       table-size: 65537
 *       health-check: { ... }       # opaque for now, kept as is
 *       realservers:
 *         - { address: 192.168.1.10, weight: 1, method: dr, mac: "02:00:00:00:00:0a" }
 */
import { z } from 'zod';

const int = z.number().int();

export const persistenceSchema = z.union([
  int,
  z.strictObject({ timeout: int.optional(), netmask: z.union([z.string(), int]).optional() }),
]);

export const realserverSchema = z.strictObject({
  address: z.string(),
  port: int.optional(),
  weight: int.optional(),
  method: z.string().optional(),
  mac: z.string().optional(),
  'next-hop': z.string().optional(),
  ifname: z.string().optional(),
  'health-check': z.unknown().optional(),
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
  'health-check': z.unknown().optional(),
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
});

export const configFileSchema = z.strictObject({
  settings: settingsSchema.optional(),
  services: z.array(serviceSchema).optional(),
});

export type ConfigFile = z.infer<typeof configFileSchema>;
export type ServiceEntry = z.infer<typeof serviceSchema>;
export type RealserverEntry = z.infer<typeof realserverSchema>;

/** Model field name -> file key, for messages and locations. */
export const FILE_KEY: Readonly<Record<string, string>> = {
  tableSize: 'table-size',
  nextHop: 'next-hop',
  healthCheck: 'health-check',
  hashSeed: 'hash-seed',
  tcpFin: 'tcp-fin',
};
