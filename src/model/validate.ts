/**
 * validateConfig: check a DirectorConfig against what LVS and the XDP data plane accept, and return
 * it in canonical form (canonical addresses, netmasks, MACs, flag order).
 *
 * Problems are collected as issues with the path of the offending field (as in the config file,
 * e.g. services[1].realservers[0].weight) so that the config file parser can turn a path into
 * file:line:col; validateConfig throws one ConfigError listing them.
 */
import {
  canonicalAddress, canonicalMac, familyOf, formatNetmask, fullPrefix, isValidIfname, parseNetmask,
  type Family,
} from './address.js';
import { ConfigError } from './config-error.js';
import {
  FORWARDING_METHODS, MAX_FWMARK, MAX_IDLE_TIMEOUT, MAX_PERSISTENCE_TIMEOUT, MAX_WEIGHT, PROTOCOLS, TABLE_PRIMES,
  canonicalFlags, schedFlagProblem, schedulerProblem, serviceId, MAX_THRESHOLD,
  fwmarkVip,
  type DirectorConfig, type DirectorSettings, type FirewallMark, type Realserver, type VirtualService,
} from './types.js';
import { checkMarks } from './fwmark.js';

export interface Limits {
  maxServices?: number;
  /** Total realservers (IPVS destinations) over all services. */
  maxRealservers?: number;
  maxTableSize?: number;
}

export type FieldPath = readonly (string | number)[];

export interface ConfigIssue {
  path: FieldPath;
  message: string;
}

/** `services[1].realservers[0].weight` */
export function formatFieldPath(path: FieldPath): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

export interface CheckResult {
  config: DirectorConfig;
  issues: ConfigIssue[];
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** Collects issues under a path prefix, naming the object they are about. */
class Issues {
  constructor(
    private readonly list: ConfigIssue[],
    private readonly base: FieldPath,
    private readonly subject: string,
  ) {}

  add(field: string | undefined, message: string): void {
    const path = field === undefined ? this.base : [...this.base, field];
    this.list.push({ path, message: this.subject ? `${this.subject}: ${message}` : message });
  }
}

function checkRealserver(
  rs: Realserver, svc: VirtualService, vipFamily: Family | null, issues: Issues,
): Realserver {
  const out: Realserver = { ...rs };
  const address = typeof rs.address === 'string' ? canonicalAddress(rs.address) : null;
  if (address === null) issues.add('address', `${show(rs.address)} is not an IPv4 or IPv6 address`);
  else out.address = address;
  if (!isInt(rs.port, 0, 65535)) {
    issues.add('port', `port ${show(rs.port)} out of range 0..65535`);
  } else if (svc.fwmark) {
    // The realservers keep the packet's port (the given one is kept as IPVS keeps it).
    if (rs.method === 'nat') issues.add('method', 'LVS-NAT is not supported on a firewall-mark service yet: a reply is rewritten to one VIP and port, and a mark may cover several');
  } else if (rs.method === 'nat') {
    // IPVS NAT maps VIP:port to RIP:rport; an all-ports service keeps the client's port.
    if (svc.port === 0 && rs.port !== 0) {
      issues.add('port', `port ${rs.port} on an all-ports service: LVS-NAT keeps the client's destination port there (give no port)`);
    } else if (svc.port !== 0 && rs.port === 0) {
      issues.add('port', 'port 0: an LVS-NAT realserver of a service with a port needs one (default: the service port)');
    }
  } else if (isInt(svc.port, 0, 65535) && rs.port !== svc.port) {
    issues.add('port', `port ${rs.port} differs from the service port ${svc.port}; ` +
      'DR and Tun forward to the service port and cannot change it');
  }
  if (!isInt(rs.weight, 0, MAX_WEIGHT)) issues.add('weight', `weight ${show(rs.weight)} out of range 0..${MAX_WEIGHT}`);
  // ipvsadm -x / -y; 0 is "no threshold", kept as absent so equal configurations compare equal.
  for (const f of ['upperThreshold', 'lowerThreshold'] as const) {
    if (rs[f] === undefined) continue;
    if (!isInt(rs[f], 0, MAX_THRESHOLD)) issues.add(f, `threshold ${show(rs[f])} out of range 0..${MAX_THRESHOLD}`);
    else if (rs[f] === 0) delete out[f];
  }
  // As IPVS refuses it (ERANGE): a lower threshold above the upper one.
  if (isInt(rs.lowerThreshold, 1, MAX_THRESHOLD) && isInt(rs.upperThreshold ?? 0, 0, MAX_THRESHOLD) && rs.lowerThreshold > (rs.upperThreshold ?? 0)) {
    issues.add('lowerThreshold', `lower threshold ${rs.lowerThreshold} is above the upper threshold ${rs.upperThreshold ?? 0}`);
  }
  const method = rs.method as string;
  if (!(FORWARDING_METHODS as readonly string[]).includes(method)) {
    issues.add('method', `unknown forwarding method ${show(method)} (use dr, tun or nat)`);
  }
  const rsFamily = address ? familyOf(address) : null;
  if (method === 'nat' && rsFamily !== null && vipFamily !== null && rsFamily !== vipFamily) {
    issues.add('address', `LVS-NAT cannot translate an IPv${vipFamily} VIP to an IPv${rsFamily} realserver`);
  }
  if (method === 'dr' && rsFamily !== null && vipFamily !== null && rsFamily !== vipFamily) {
    issues.add('address', `LVS-DR cannot forward an IPv${vipFamily} VIP to an IPv${rsFamily} realserver ` +
      '(only Tun may mix families)');
  }
  if (rs.mac !== undefined) {
    const mac = typeof rs.mac === 'string' ? canonicalMac(rs.mac) : null;
    if (mac === null) issues.add('mac', `${show(rs.mac)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
    else out.mac = mac;
  }
  if (rs.nextHop !== undefined) {
    const hop = typeof rs.nextHop === 'string' ? canonicalAddress(rs.nextHop) : null;
    if (hop === null) issues.add('nextHop', `${show(rs.nextHop)} is not an IPv4 or IPv6 address`);
    else if (method === 'dr') issues.add('nextHop', 'a next hop applies only to Tun realservers (DR realservers share the director\'s link)');
    else if (rsFamily !== null && familyOf(hop) !== rsFamily) {
      issues.add('nextHop', `next hop ${hop} is IPv${familyOf(hop)} but the realserver is IPv${rsFamily}`);
    } else out.nextHop = hop;
  }
  if (rs.ifname !== undefined && (typeof rs.ifname !== 'string' || !isValidIfname(rs.ifname))) {
    issues.add('ifname', `${show(rs.ifname)} is not a valid interface name (1..15 characters, no spaces, '/' or ':')`);
  }
  return out;
}

function checkService(svc: VirtualService, limits: Limits, issues: Issues, path: FieldPath, list: ConfigIssue[]): VirtualService {
  const out: VirtualService = { ...svc };
  if (svc.fwmark !== undefined) {
    if (!isInt(svc.fwmark, 1, MAX_FWMARK)) issues.add('fwmark', `fwmark ${show(svc.fwmark)} out of range 1..${MAX_FWMARK}`);
    else if (svc.vip !== fwmarkVip(4) && svc.vip !== fwmarkVip(6)) issues.add('vip', 'a firewall-mark service has no VIP (its mark\'s definition says which addresses are its)');
    else if (svc.port !== 0) issues.add('port', 'a firewall-mark service has no port (its mark\'s definition says which ports are its)');
    // Its marks' rules carry the protocols; ipvsadm sets TCP "to a sane value, even though it is
    // not used": canonical, so that a file and a restore of the same service compare equal.
    out.protocol = 'tcp';
  }
  if (!(PROTOCOLS as readonly string[]).includes(svc.protocol)) {
    issues.add('protocol', `protocol ${show(svc.protocol)} is not tcp or udp`);
  }
  const vip = typeof svc.vip === 'string' ? canonicalAddress(svc.vip) : null;
  if (vip === null) issues.add('vip', `${show(svc.vip)} is not an IPv4 or IPv6 address (names are not resolved)`);
  else out.vip = vip;
  const family = vip ? familyOf(vip) : null;
  if (!isInt(svc.port, 0, 65535)) issues.add('port', `port ${show(svc.port)} out of range 0..65535`);
  const schedProblem = typeof svc.scheduler === 'string' ? schedulerProblem(svc.scheduler) : 'scheduler missing';
  if (schedProblem) issues.add('scheduler', schedProblem);
  const flags = Array.isArray(svc.flags) ? svc.flags : [];
  flags.forEach((flag) => {
    const p = schedFlagProblem(String(flag), String(svc.scheduler));
    if (p && !schedProblem) issues.add('flags', p);
  });
  out.flags = canonicalFlags(flags);
  if (svc.persistence !== undefined) {
    const { timeout, netmask } = svc.persistence;
    const persistence = { timeout, netmask };
    if (!isInt(timeout, 1, MAX_PERSISTENCE_TIMEOUT)) {
      issues.add('persistence', `persistence timeout ${show(timeout)} out of range 1..${MAX_PERSISTENCE_TIMEOUT}`);
    }
    if (family !== null) {
      const plen = typeof netmask === 'string' ? parseNetmask(netmask, family) : 'netmask missing';
      if (typeof plen === 'string') issues.add('persistence', `netmask: ${plen}`);
      else persistence.netmask = formatNetmask(plen, family);
    }
    out.persistence = persistence;
  }
  if (typeof svc.ops !== 'boolean') issues.add('ops', `ops must be true or false, not ${show(svc.ops)}`);
  else if (svc.ops && svc.protocol !== 'udp' && !svc.fwmark) issues.add('ops', 'one-packet scheduling (ops) is only for UDP services');
  if (svc.tableSize !== undefined) {
    const max = limits.maxTableSize ?? TABLE_PRIMES[TABLE_PRIMES.length - 1]!;
    if (!TABLE_PRIMES.includes(svc.tableSize)) {
      issues.add('tableSize', `table size ${show(svc.tableSize)} is not one of ${TABLE_PRIMES.join(', ')}`);
    } else if (svc.tableSize > max) {
      issues.add('tableSize', `table size ${svc.tableSize} exceeds the maximum ${max}`);
    }
  }
  const seen = new Map<string, number>();
  const realservers = Array.isArray(svc.realservers) ? svc.realservers : [];
  if (!Array.isArray(svc.realservers)) issues.add('realservers', 'realservers must be a list');
  out.realservers = realservers.map((rs, i) => {
    const rsPath = [...path, 'realservers', i];
    const name = `${safeServiceName(out)}, realserver ${typeof rs.address === 'string' ? rs.address : '#' + i}`;
    const checked = checkRealserver(rs, out, family, new Issues(list, rsPath, name));
    const before = seen.get(checked.address);
    if (before !== undefined) {
      list.push({ path: [...rsPath, 'address'], message: `${name}: duplicate realserver (also realservers[${before}])` });
    } else {
      seen.set(checked.address, i);
    }
    return checked;
  });
  return out;
}

function safeServiceName(svc: VirtualService): string {
  try {
    return `service ${serviceId(svc)}`;
  } catch {
    return `service ${String(svc.protocol)} ${String(svc.vip)}:${String(svc.port)}`;
  }
}

function checkSettings(settings: DirectorSettings, list: ConfigIssue[]): DirectorSettings {
  const out: DirectorSettings = structuredClone(settings);
  const tun = settings.tunnel;
  const issues = (field: string) => new Issues(list, ['settings', field], '');
  if (tun) {
    const t = new Issues(list, ['settings', 'tunnel'], 'tunnel');
    for (const [field, family] of [['source4', 4], ['source6', 6]] as const) {
      const v = tun[field];
      if (v === undefined) continue;
      const addr = canonicalAddress(v);
      if (addr === null || familyOf(addr) !== family) t.add(field, `${show(v)} is not an IPv${family} address`);
      else out.tunnel![field] = addr;
    }
    if (tun.mtu !== undefined && !isInt(tun.mtu, 68, 65535)) t.add('mtu', `mtu ${show(tun.mtu)} out of range 68..65535`);
    if (tun.ttl !== undefined && !isInt(tun.ttl, 1, 255)) t.add('ttl', `ttl ${show(tun.ttl)} out of range 1..255`);
  }
  if (settings.hashSeed !== undefined && !isInt(settings.hashSeed, 0, 0xffffffff)) {
    issues('hashSeed').add(undefined, `hash seed ${show(settings.hashSeed)} is not a 32-bit unsigned integer`);
  }
  for (const f of ['expireNodestConn', 'expireQuiescentTemplate'] as const) {
    if (settings[f] !== undefined && typeof settings[f] !== 'boolean') issues(f).add(undefined, `${show(settings[f])} is not true or false`);
  }
  for (const [field, v] of Object.entries(settings.timeouts ?? {})) {
    if (v !== undefined && !isInt(v, 1, MAX_IDLE_TIMEOUT)) {
      new Issues(list, ['settings', 'timeouts', field], '').add(undefined, `timeout ${show(v)} out of range 1..${MAX_IDLE_TIMEOUT} seconds`);
    }
  }
  return out;
}

/** Check a config and return its canonical form together with every problem found. */
export function checkConfig(cfg: DirectorConfig, limits: Limits = {}, known?: ReadonlySet<VirtualService>): CheckResult {
  const list: ConfigIssue[] = [];
  const services = Array.isArray(cfg.services) ? cfg.services : [];
  if (!Array.isArray(cfg.services)) list.push({ path: ['services'], message: 'services must be a list' });
  const seen = new Map<string, number>();
  let totalRealservers = 0;
  const out: DirectorConfig = {
    services: services.map((svc, i) => {
      const path = ['services', i];
      // A service of the running configuration (checked and canonical when it was applied) is
      // kept as it is, object and all: a change to one service of a thousand checks one.
      const checked = known?.has(svc) ? svc : checkService(svc, limits, new Issues(list, path, safeServiceName(svc)), path, list);
      totalRealservers += checked.realservers.length;
      const id = safeServiceName(checked);
      const before = seen.get(id);
      if (before !== undefined) list.push({ path, message: `${id}: duplicate service (also services[${before}])` });
      else seen.set(id, i);
      return checked;
    }),
  };
  if (cfg.settings !== undefined) out.settings = checkSettings(cfg.settings, list);
  if (cfg.marks !== undefined) {
    if (!Array.isArray(cfg.marks)) list.push({ path: ['marks'], message: 'marks must be a list' });
    else out.marks = checkMarks(cfg.marks as FirewallMark[], list);
  }
  if (limits.maxServices !== undefined && services.length > limits.maxServices) {
    list.push({ path: ['services'], message: `${services.length} services exceed the limit of ${limits.maxServices}` });
  }
  if (limits.maxRealservers !== undefined && totalRealservers > limits.maxRealservers) {
    list.push({ path: ['services'], message: `${totalRealservers} realservers in total exceed the limit of ${limits.maxRealservers}` });
  }
  return { config: out, issues: list };
}

export interface ValidateOptions {
  /** Turns a field path into a location such as `director.yaml:12:9`. */
  locate?: (path: FieldPath) => string | undefined;
  /** Rename model fields for messages (e.g. tableSize -> table-size in the config file). */
  fieldName?: (path: FieldPath) => string;
  /** Services already validated (the running configuration's): kept as they are, not checked again. */
  known?: ReadonlySet<VirtualService>;
}

/** One ConfigError for a list of issues: the first one's location and field, all in the message. */
export function issuesToError(issues: readonly ConfigIssue[], opts: ValidateOptions = {}): ConfigError {
  const where = (path: FieldPath) => ({
    location: opts.locate?.(path) || undefined,
    field: (opts.fieldName ? opts.fieldName(path) : formatFieldPath(path)) || undefined,
  });
  // ConfigError prefixes the first line with its location and field; later lines carry their own.
  const rest = issues.slice(1, 20).map((issue) => {
    const { location, field } = where(issue.path);
    return [location, field, issue.message].filter(Boolean).join(': ');
  });
  if (issues.length > 20) rest.push(`... and ${issues.length - 20} more problems`);
  return new ConfigError([issues[0]!.message, ...rest].join('\n'), where(issues[0]!.path));
}

/** Validate a config; returns its canonical form or throws ConfigError naming every problem. */
export function validateConfig(cfg: DirectorConfig, limits: Limits = {}, opts: ValidateOptions = {}): DirectorConfig {
  const { config, issues } = checkConfig(cfg, limits, opts.known);
  if (issues.length > 0) throw issuesToError(issues, opts);
  return config;
}

/** The persistence mask as a prefix length (for the data plane's lvs_svc.persist_mask). */
export function persistencePrefix(svc: VirtualService): number {
  const family = familyOf(svc.vip);
  if (!svc.persistence) return fullPrefix(family);
  const plen = parseNetmask(svc.persistence.netmask, family);
  if (typeof plen === 'string') throw new ConfigError(plen, { field: serviceId(svc) });
  return plen;
}
