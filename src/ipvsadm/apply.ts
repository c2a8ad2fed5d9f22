/**
 * applyCommands: what the kernel does with ipvsadm commands, applied to a DirectorConfig without
 * touching it (a new config is returned). Same semantics as IPVS: -a on a missing service, -A of
 * an existing one, -e / -d of a missing realserver are errors; -E replaces the service's
 * scheduling settings and keeps its realservers; -e replaces weight, forwarding method and thresholds.
 */
import { ConfigError } from '../model/config-error.js';
import { serviceId, type DirectorConfig, type Realserver, type VirtualService } from '../model/types.js';
import type { IpvsadmCommand, ServiceRef } from './commands.js';

const OPTION_OF: Record<IpvsadmCommand['op'], string> = {
  'add-service': '-A', 'edit-service': '-E', 'delete-service': '-D', 'clear': '-C',
  'add-server': '-a', 'edit-server': '-e', 'delete-server': '-d',
};

function fail(cmd: IpvsadmCommand, message: string): never {
  throw new ConfigError(message, { location: cmd.location, field: OPTION_OF[cmd.op] });
}

function sameService(a: ServiceRef, b: ServiceRef): boolean {
  return (a.fwmark ?? 0) === (b.fwmark ?? 0) && a.protocol === b.protocol && a.vip === b.vip && a.port === b.port;
}

function findService(services: VirtualService[], cmd: IpvsadmCommand & { service: ServiceRef }): number {
  const i = services.findIndex((s) => sameService(s, cmd.service));
  if (i < 0) fail(cmd, `service ${serviceId(cmd.service)} does not exist`);
  return i;
}

function applyOne(services: VirtualService[], cmd: IpvsadmCommand): VirtualService[] {
  switch (cmd.op) {
    case 'clear':
      return [];
    case 'add-service': {
      if (services.some((s) => sameService(s, cmd.service))) fail(cmd, `service ${serviceId(cmd.service)} already exists`);
      return [...services, { ...cmd.service, flags: [...cmd.service.flags], realservers: [] }];
    }
    case 'edit-service': {
      const i = findService(services, cmd);
      const old = services[i]!;
      const edited: VirtualService = { ...cmd.service, flags: [...cmd.service.flags], realservers: old.realservers };
      if (old.tableSize !== undefined && cmd.service.tableSize === undefined) edited.tableSize = old.tableSize;
      if (old.healthCheck !== undefined) edited.healthCheck = old.healthCheck;
      return services.map((s, j) => (j === i ? edited : s));
    }
    case 'delete-service': {
      const i = findService(services, cmd);
      return services.filter((_, j) => j !== i);
    }
    case 'add-server':
    case 'edit-server':
    case 'delete-server':
      return applyToRealservers(services, cmd);
  }
}

function applyToRealservers(
  services: VirtualService[], cmd: IpvsadmCommand & { op: 'add-server' | 'edit-server' | 'delete-server' },
): VirtualService[] {
  const i = findService(services, cmd);
  const svc = services[i]!;
  const address = cmd.op === 'delete-server' ? cmd.address : cmd.realserver.address;
  const j = svc.realservers.findIndex((r) => r.address === address);
  const name = `realserver ${address} of service ${serviceId(svc)}`;
  let realservers: Realserver[];
  if (cmd.op === 'add-server') {
    if (j >= 0) fail(cmd, `${name} already exists`);
    realservers = [...svc.realservers, { ...cmd.realserver }];
  } else if (j < 0) {
    fail(cmd, `${name} does not exist`);
  } else if (cmd.op === 'edit-server') {
    const old = svc.realservers[j]!;
    const edited: Realserver = { ...old, weight: cmd.realserver.weight, method: cmd.realserver.method };
    // IPVS replaces the thresholds with what -e gives (absent: 0).
    delete edited.upperThreshold;
    delete edited.lowerThreshold;
    if (cmd.realserver.upperThreshold) edited.upperThreshold = cmd.realserver.upperThreshold;
    if (cmd.realserver.lowerThreshold) edited.lowerThreshold = cmd.realserver.lowerThreshold;
    if (cmd.realserver.mac !== undefined) edited.mac = cmd.realserver.mac;
    if (edited.method === 'dr') delete edited.nextHop; // a next hop only means something for Tun
    realservers = svc.realservers.map((r, k) => (k === j ? edited : r));
  } else {
    realservers = svc.realservers.filter((_, k) => k !== j);
  }
  return services.map((s, k) => (k === i ? { ...svc, realservers } : s));
}

/** Apply commands in order to a copy of `config`; throws ConfigError at the first that fails. */
export function applyCommands(config: DirectorConfig, commands: readonly IpvsadmCommand[]): DirectorConfig {
  let services = config.services;
  for (const cmd of commands) services = applyOne(services, cmd);
  const out: DirectorConfig = { services };
  if (config.settings !== undefined) out.settings = config.settings;
  // Marks are not rules (as iptables rules are not IPVS's): -C and -R leave them.
  if (config.marks !== undefined) out.marks = config.marks;
  return out;
}
