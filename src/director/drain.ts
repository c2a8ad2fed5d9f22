/**
 * Manual drains (pure): `lvs-xdp drain` (a realserver or a whole service) and ipvsadm's
 * `-e ... -w 0`. A drained realserver runs at weight 0 (quiesced: its established flows go on,
 * it takes no new ones) until it is undrained, whatever else changes meanwhile: every change
 * (an apply, `lvs-xdp run`'s health checks and resyncs) has the drains laid over its
 * configuration, so nothing reverts one as drift. The weights from before the drain are kept in
 * the drain record: undrain gives them back.
 *
 * Scopes: a realserver (key `serviceId/rip`) and a service (key `serviceId`). A later issue adds
 * the whole director (every service) with the same record.
 */
import { realId } from '../dataplane/compile.js';
import { ConfigError } from '../errors.js';
import { serviceId, type DirectorConfig, type VirtualService } from '../model/types.js';
import type { IpvsadmCommand } from '../ipvsadm/commands.js';
import type { Drain } from './snapshot.js';

export type Drains = Record<string, Drain>;

export interface DrainScope {
  service: Pick<VirtualService, 'protocol' | 'vip' | 'port'>;
  /** Absent: every realserver of the service. */
  realserver?: string;
}

function drained(drains: Drains, s: VirtualService, address: string): Drain | undefined {
  return drains[realId(s, { address })] ?? drains[serviceId(s)];
}

/** `cfg` with every drained realserver at weight 0. */
export function overlayDrains(cfg: DirectorConfig, drains: Drains | undefined): DirectorConfig {
  if (!drains || Object.keys(drains).length === 0) return cfg;
  return {
    ...cfg,
    services: cfg.services.map((s) => ({
      ...s, realservers: s.realservers.map((r) => (drained(drains, s, r.address) ? { ...r, weight: 0 } : r)),
    })),
  };
}

/** Whether a realserver is drained, and since when (for listings, status and metrics). */
export function drainOf(drains: Drains | undefined, s: Pick<VirtualService, 'protocol' | 'vip' | 'port'>, address: string): Drain | undefined {
  if (!drains) return undefined;
  return drains[realId(s, { address })] ?? drains[serviceId(s)];
}

function findService(cfg: DirectorConfig, scope: DrainScope): VirtualService {
  const s = cfg.services.find((x) => serviceId(x) === serviceId(scope.service));
  if (!s) throw new ConfigError(`service ${serviceId(scope.service)} does not exist`, { hint: 'list them with lvs-xdp -L -n' });
  if (scope.realserver !== undefined && !s.realservers.some((r) => r.address === scope.realserver)) {
    throw new ConfigError(`${serviceId(s)} has no realserver ${scope.realserver}`, { hint: `list them with lvs-xdp -L -n -t ${s.vip.includes(':') ? `[${s.vip}]` : s.vip}:${s.port}` });
  }
  return s;
}

/** The drains after `drain SCOPE` (the configuration is unchanged: the overlay does the rest). */
export function addDrain(cfg: DirectorConfig, drains: Drains, scope: DrainScope, now: string): Drains {
  const s = findService(cfg, scope);
  const key = scope.realserver === undefined ? serviceId(s) : realId(s, { address: scope.realserver });
  if (drains[key]) return drains;
  const weights: Record<string, number> = {};
  for (const r of s.realservers) {
    if (scope.realserver !== undefined && r.address !== scope.realserver) continue;
    // Already drained by another record: the weight from before that one.
    const other = drainOf(drains, s, r.address);
    weights[r.address] = other?.weights[r.address] ?? r.weight;
  }
  return { ...drains, [key]: { service: serviceId(s), ...(scope.realserver !== undefined ? { realserver: scope.realserver } : {}), since: now, weights } };
}

/**
 * `undrain SCOPE`: the drains without it, and the configuration with the weights from before
 * (a realserver still drained by another record stays at 0 through the overlay).
 */
export function removeDrain(cfg: DirectorConfig, drains: Drains, scope: DrainScope): { config: DirectorConfig; drains: Drains } {
  const s = findService(cfg, scope);
  const key = scope.realserver === undefined ? serviceId(s) : realId(s, { address: scope.realserver });
  const d = drains[key];
  if (!d) {
    throw new ConfigError(`${scope.realserver === undefined ? serviceId(s) : `${serviceId(s)} realserver ${scope.realserver}`} is not drained`, { hint: 'lvs-xdp status lists the drains' });
  }
  const rest = { ...drains };
  delete rest[key];
  const config: DirectorConfig = {
    ...cfg,
    services: cfg.services.map((x) => (serviceId(x) !== serviceId(s) ? x : {
      ...x, realservers: x.realservers.map((r) => (r.weight === 0 && d.weights[r.address] !== undefined ? { ...r, weight: d.weights[r.address]! } : r)),
    })),
  };
  return { config, drains: rest };
}

/**
 * ipvsadm commands as drains: `-e -r RIP -w 0` on a realserver with a weight drains it (the
 * operator's way to quiesce one), `-e -r RIP -w N` (N > 0) ends its drain. `-d` and `-D` end
 * drains with what they delete (the snapshot keeps only drains of what is configured).
 */
export function drainsFromCommands(running: DirectorConfig, drains: Drains, commands: readonly IpvsadmCommand[], now: string): Drains {
  let out = drains;
  for (const c of commands) {
    if (c.op !== 'edit-server') continue;
    const s = running.services.find((x) => serviceId(x) === serviceId(c.service));
    const r = s?.realservers.find((x) => x.address === c.realserver.address);
    if (!s || !r) continue;
    const key = realId(s, r);
    if (c.realserver.weight === 0) {
      if (!out[key] && r.weight > 0) out = { ...out, [key]: { service: serviceId(s), realserver: r.address, since: now, weights: { [r.address]: r.weight } } };
    } else if (out[key]) {
      out = { ...out };
      delete out[key];
    }
  }
  return out;
}
