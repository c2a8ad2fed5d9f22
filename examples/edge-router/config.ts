/**
 * The edge router's own configuration (JSON), turned into lvs-xdp's DirectorConfig. The router
 * speaks in its terms (an uplink, published services, backends behind the downlink); lvs-xdp's
 * model is reached only through the package's exports.
 *
 *   {
 *     "uplink": "eth0",                 // where clients' traffic arrives: lvs-xdp attaches here
 *     "xdpMode": "auto",                // native | generic | auto
 *     "services": [
 *       { "vip": "203.0.113.80", "port": 80, "protocol": "tcp", "scheduler": "mh",
 *         "backends": ["10.1.0.10", { "address": "10.1.0.11", "weight": 2 }] }
 *     ],
 *     "http": "127.0.0.1:9180",         // GET /counters (JSON); omit for none
 *     "logEverySeconds": 0,             // periodic counter log lines; 0 = only on events
 *     "pollMs": 250,                    // how often links are checked
 *     "detachOnExit": true              // SIGTERM / SIGINT detach lvs-xdp (false: it keeps forwarding)
 *   }
 *
 * Backends are realservers reached by LVS-DR: each on a network directly connected to the router,
 * usually behind another interface than the uplink (lvs-xdp then sends their packets out of it
 * with XDP_REDIRECT), each with the VIP on its loopback.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, SCHEDULERS, validateConfig, type DirectorConfig, type Scheduler, type XdpMode } from 'lvs-xdp';

export interface Backend { address: string; weight: number }
export interface PublishedService { vip: string; port: number; protocol: 'tcp' | 'udp'; scheduler: Scheduler; backends: Backend[] }
export interface RouterConfig {
  uplink: string;
  xdpMode: XdpMode;
  services: PublishedService[];
  http?: { host: string; port: number };
  logEverySeconds: number;
  pollMs: number;
  detachOnExit: boolean;
}

function fail(file: string, field: string, message: string): never {
  throw new ConfigError(message, { location: file, field });
}

export function parseRouterConfig(text: string, file: string): RouterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(file, '', `not JSON: ${(e as Error).message}`);
  }
  const o = raw as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) fail(file, '', 'expected an object');
  if (typeof o.uplink !== 'string' || !o.uplink) fail(file, 'uplink', 'the uplink interface name is required');
  const xdpMode = (o.xdpMode ?? 'auto') as XdpMode;
  if (!['native', 'generic', 'auto'].includes(xdpMode)) fail(file, 'xdpMode', 'native, generic or auto');
  if (!Array.isArray(o.services)) fail(file, 'services', 'a list of services is required ([] publishes none)');
  const services = o.services.map((s: Record<string, unknown>, i: number): PublishedService => {
    const at = `services[${i}]`;
    const scheduler = (s.scheduler ?? 'mh') as Scheduler;
    if (!SCHEDULERS.includes(scheduler)) fail(file, `${at}.scheduler`, `one of ${SCHEDULERS.join(', ')}`);
    if (!Array.isArray(s.backends) || s.backends.length === 0) fail(file, `${at}.backends`, 'at least one backend');
    return {
      vip: String(s.vip), port: Number(s.port), protocol: (s.protocol ?? 'tcp') as 'tcp' | 'udp', scheduler,
      backends: s.backends.map((b: unknown) => (typeof b === 'string' ? { address: b, weight: 1 } : { address: String((b as Backend).address), weight: Number((b as Backend).weight ?? 1) })),
    };
  });
  let http: RouterConfig['http'];
  if (o.http !== undefined) {
    const m = /^(.+):(\d+)$/.exec(String(o.http));
    if (!m) fail(file, 'http', 'HOST:PORT');
    http = { host: m[1]!, port: Number(m[2]) };
  }
  const cfg: RouterConfig = {
    uplink: o.uplink, xdpMode, services, ...(http ? { http } : {}),
    logEverySeconds: Number(o.logEverySeconds ?? 0), pollMs: Number(o.pollMs ?? 250), detachOnExit: o.detachOnExit !== false,
  };
  // lvs-xdp's own validation names the service and field of anything it refuses (a bad VIP, a
  // port out of range, a weight above 65535) before the router touches the interface.
  directorConfig(cfg, file);
  return cfg;
}

export function readRouterConfig(path: string): RouterConfig {
  return parseRouterConfig(readFileSync(path, 'utf8'), path);
}

/** The router's services as lvs-xdp's configuration: LVS-DR to every backend. */
export function directorConfig(cfg: RouterConfig, file = 'router config'): DirectorConfig {
  try {
    return validateConfig({
      services: cfg.services.map((s) => ({
        protocol: s.protocol, vip: s.vip, port: s.port, scheduler: s.scheduler, flags: [], ops: false,
        realservers: s.backends.map((b) => ({ address: b.address, port: s.port, weight: b.weight, method: 'dr' as const })),
      })),
    });
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.message, { location: file, hint: e.hint });
    throw e;
  }
}
