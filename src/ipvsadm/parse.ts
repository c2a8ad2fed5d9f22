/**
 * ipvsadm rule syntax: parseRule for one command line, parseRules for an `ipvsadm -S` / `-R`
 * file. Only the rule commands (-A -E -D -C -a -e -d) are accepted; everything is checked here,
 * so that errors name the line, the option and the problem: `rules.txt:7: -w: weight 70000 out
 * of range 0..65535`.
 */
import { canonicalAddress, canonicalMac, familyOf, formatNetmask, parseNetmask, type Family } from '../model/address.js';
import { ConfigError } from '../model/config-error.js';
import {
  DEFAULT_PERSISTENCE_TIMEOUT, MAX_FWMARK, MAX_PERSISTENCE_TIMEOUT, MAX_WEIGHT, MAX_THRESHOLD, IPVSADM_DEFAULT_SCHEDULER, TABLE_PRIMES,
  canonicalFlags, fwmarkVip, schedFlagProblem, schedulerProblem,
  type ForwardingMethod, type Persistence, type Protocol, type Scheduler,
} from '../model/types.js';
import type { IpvsadmCommand, RealserverSpec, ServiceRef, ServiceSpec } from './commands.js';
import { tokenize } from './tokenize.js';
import { expandShortOptions } from './argv.js';

type Arity = 'none' | 'required' | 'optional';

interface OptionDef {
  /** Canonical short name used in messages (or the long one for extensions). */
  name: string;
  arity: Arity;
}

const OPTIONS: Record<string, OptionDef> = {};
function def(short: string | null, long: string, arity: Arity): void {
  const d = { name: short ? `-${short}` : `--${long}`, arity };
  if (short) OPTIONS[`-${short}`] = d;
  OPTIONS[`--${long}`] = d;
}
def('A', 'add-service', 'none');
def('E', 'edit-service', 'none');
def('D', 'delete-service', 'none');
def('C', 'clear', 'none');
def('a', 'add-server', 'none');
def('e', 'edit-server', 'none');
def('d', 'delete-server', 'none');
def('t', 'tcp-service', 'required');
def('u', 'udp-service', 'required');
def('f', 'fwmark-service', 'required');
def('6', 'ipv6', 'none');
def('s', 'scheduler', 'required');
def('p', 'persistent', 'optional');
def('M', 'netmask', 'required');
def('o', 'ops', 'none');
def('b', 'sched-flags', 'required');
def('r', 'real-server', 'required');
def('g', 'gatewaying', 'none');
def('i', 'ipip', 'none');
def('m', 'masquerading', 'none');
def('w', 'weight', 'required');
def(null, 'mac', 'required');
def(null, 'table-size', 'required');
def(null, 'tun-type', 'required');
def(null, 'tun-port', 'required');
def(null, 'tun-nocsum', 'none');
def(null, 'tun-csum', 'none');
def(null, 'tun-remcsum', 'none');
def('x', 'u-threshold', 'required');
def('y', 'l-threshold', 'required');

/** Options ipvsadm has that a rule for this director cannot use, with the reason. */
const REFUSED: Record<string, string> = {
  '--sctp-service': 'SCTP services are not supported; use -t or -u',
  '--pe': 'persistence engines are not supported',
};
const NOT_RULES = ['-L', '-l', '--list', '-S', '--save', '-R', '--restore', '-Z', '--zero', '--set',
  '--start-daemon', '--stop-daemon', '-h', '--help', '-v', '--version', '-n', '--numeric', '-c', '--connection',
  '--stats', '--rate', '--exact', '--thresholds', '--persistent-conn', '--sort', '--nosort'];

const COMMANDS: Record<string, IpvsadmCommand['op']> = {
  '-A': 'add-service', '-E': 'edit-service', '-D': 'delete-service', '-C': 'clear',
  '-a': 'add-server', '-e': 'edit-server', '-d': 'delete-server',
};

/** ipvsadm 1.30+'s tunnel options of a Tun realserver. */
const TUN_OPTIONS = ['--tun-type', '--tun-port', '--tun-nocsum', '--tun-csum', '--tun-remcsum'] as const;
/** Service options: -t / -u addr:port, -f MARK (with -6 for an IPv6 mark). */
const SERVICE_OPTIONS = ['-t', '-u', '-f', '-6'];

/** Which options each command takes (besides the service option). */
const ALLOWED: Record<IpvsadmCommand['op'], readonly string[]> = {
  'add-service': ['-s', '-p', '-M', '-o', '-b', '--table-size'],
  'edit-service': ['-s', '-p', '-M', '-o', '-b', '--table-size'],
  'delete-service': [],
  'clear': [],
  'add-server': ['-r', '-g', '-i', '-m', '-w', '--mac', '-x', '-y', ...TUN_OPTIONS],
  'edit-server': ['-r', '-g', '-i', '-m', '-w', '--mac', '-x', '-y', ...TUN_OPTIONS],
  'delete-server': ['-r'],
};

interface Given {
  name: string;
  value: string | undefined;
}

class RuleError extends Error {
  constructor(readonly option: string | undefined, message: string) {
    super(message);
  }
}

function fail(option: string | undefined, message: string): never {
  throw new RuleError(option, message);
}

/** Split argv into options with their values, resolving long forms and attached values. */
function scanOptions(words: readonly string[]): Given[] {
  const given: Given[] = [];
  const argv = expandShortOptions(words);
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (!tok.startsWith('-') || tok === '-' || tok === '--') fail(undefined, `unexpected argument ${JSON.stringify(tok)}`);
    let key = tok;
    let attached: string | undefined;
    if (tok.startsWith('--')) {
      const eq = tok.indexOf('=');
      if (eq > 0) [key, attached] = [tok.slice(0, eq), tok.slice(eq + 1)];
    }
    if (REFUSED[key]) fail(key, REFUSED[key]);
    if (NOT_RULES.includes(key)) fail(key, 'not a rule command (rules may only use -A -E -D -C -a -e -d)');
    const opt = OPTIONS[key];
    if (!opt) fail(tok, 'unknown option');
    if (opt.arity === 'none' && attached !== undefined) fail(tok, 'unknown option');
    let value = attached;
    if (value === undefined && opt.arity === 'required') {
      if (i + 1 >= argv.length) fail(opt.name, 'needs a value');
      value = argv[++i];
    } else if (value === undefined && opt.arity === 'optional') {
      // -p takes a value only when the next word is not another option.
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('-')) value = argv[++i];
    }
    given.push({ name: opt.name, value });
  }
  return given;
}

const HOSTNAME_HINT = 'host names are not resolved (no DNS); use an IP address';

function parseAddressText(option: string, text: string): string {
  const addr = canonicalAddress(text);
  if (addr !== null) return addr;
  if (/^[a-zA-Z0-9.-]+$/.test(text) && /[a-zA-Z]/.test(text)) fail(option, `${JSON.stringify(text)}: ${HOSTNAME_HINT}`);
  fail(option, `${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
}

function parsePort(option: string, text: string): number {
  if (/^\d+$/.test(text)) {
    const port = Number(text);
    if (port <= 65535) return port;
    fail(option, `port ${text} out of range 0..65535`);
  }
  if (/^[a-zA-Z][\w-]*$/.test(text)) fail(option, `port ${JSON.stringify(text)}: service names are not resolved; use a port number`);
  fail(option, `${JSON.stringify(text)} is not a port number`);
}

/** addr[:port] / [v6addr][:port] / v6addr (no port). */
export function parseAddrPort(option: string, text: string): { address: string; port: number | undefined } {
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    const address = parseAddressText(option, bracketed[1]!);
    if (familyOf(address) !== 6) fail(option, `${text}: brackets are for IPv6 addresses`);
    return { address, port: bracketed[2] === undefined ? undefined : parsePort(option, bracketed[2]) };
  }
  const colons = text.split(':').length - 1;
  if (colons === 1) {
    const [host, port] = text.split(':') as [string, string];
    const address = parseAddressText(option, host);
    return { address, port: parsePort(option, port) };
  }
  // No colon: IPv4 without port; several: IPv6 without port (a port needs [addr]:port).
  return { address: parseAddressText(option, text), port: undefined };
}

function parseIntIn(option: string, what: string, text: string | undefined, min: number, max: number): number {
  if (text !== undefined && /^-\d+$/.test(text)) fail(option, `${what} ${text} out of range ${min}..${max}`);
  if (text === undefined || !/^\d+$/.test(text)) fail(option, `${what} ${JSON.stringify(text ?? '')} is not a number`);
  const n = Number(text);
  if (n < min || n > max) fail(option, `${what} ${text} out of range ${min}..${max}`);
  return n;
}

function single(given: Given[], names: readonly string[]): Given | undefined {
  const found = given.filter((g) => names.includes(g.name));
  if (found.length > 1) fail(found[1]!.name, `given more than once (with ${found[0]!.name})`);
  return found[0];
}

/** ipvsadm's parse_fwmark: a decimal 1..UINT_MAX. */
export function parseFwmark(option: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_FWMARK) {
    fail(option, `invalid fwmark value ${JSON.stringify(text)} (an integer 1..${MAX_FWMARK})`);
  }
  return Number(text);
}

/** parseFwmark for the listing options (`-L -f MARK`): a ConfigError naming the option. */
export function parseFwmarkOption(option: string, text: string): number {
  try {
    return parseFwmark(option, text);
  } catch (e) {
    return toConfigError(e, undefined);
  }
}

function serviceFrom(given: Given[], op: string): ServiceRef & { family: Family; portGiven: boolean } {
  const svc = single(given, ['-t', '-u', '-f']);
  const v6 = single(given, ['-6']);
  if (v6 && svc?.name !== '-f') fail('-6', '-6 is for a firewall-mark service (-f MARK -6); -t and -u take the family from the address');
  if (!svc) fail(op, 'a virtual service is required (-t addr:port, -u addr:port or -f mark)');
  if (svc.name === '-f') {
    const family: Family = v6 ? 6 : 4;
    // As ipvsadm: protocol TCP "to a sane value, even though it is not used", no address, port 0.
    return { fwmark: parseFwmark('-f', svc.value!), protocol: 'tcp', vip: fwmarkVip(family), port: 0, family, portGiven: true };
  }
  const protocol: Protocol = svc.name === '-t' ? 'tcp' : 'udp';
  const { address, port } = parseAddrPort(svc.name, svc.value!);
  return { protocol, vip: address, port: port ?? 0, family: familyOf(address), portGiven: port !== undefined };
}

function serviceSpecFrom(given: Given[], ref: ServiceRef & { family: Family; portGiven: boolean }): ServiceSpec {
  // As ipvsadm: -A and -E without -s mean wlc.
  const s = single(given, ['-s']);
  const problem = s ? schedulerProblem(s.value!) : null;
  if (problem) fail('-s', problem);
  const scheduler = (s?.value ?? IPVSADM_DEFAULT_SCHEDULER) as Scheduler;
  const spec: ServiceSpec = { ...(ref.fwmark ? { fwmark: ref.fwmark } : {}), protocol: ref.protocol, vip: ref.vip, port: ref.port, scheduler, flags: [], ops: false };
  const b = single(given, ['-b']);
  if (b) {
    const flags = b.value!.split(',').map((f) => f.trim()).filter((f) => f !== '');
    for (const f of flags) {
      const p = schedFlagProblem(f, scheduler);
      if (p) fail('-b', p);
    }
    spec.flags = canonicalFlags(flags);
  }
  // --table-size (lvs-xdp extension): the config file's table-size; without it Maglev tables
  // follow the number of realservers (defaultTableSize).
  const ts = single(given, ['--table-size']);
  if (ts) {
    if (!/^\d+$/.test(ts.value!) || !TABLE_PRIMES.includes(Number(ts.value))) {
      fail('--table-size', `table size ${JSON.stringify(ts.value)} is not one of ${TABLE_PRIMES.join(', ')}`);
    }
    spec.tableSize = Number(ts.value);
  }
  const p = single(given, ['-p']);
  const m = single(given, ['-M']);
  // As ipvsadm: a service without a port must be persistent (VIP:0 says "all ports" explicitly).
  if (!ref.portGiven && !p) {
    const opt = ref.protocol === 'tcp' ? '-t' : '-u';
    fail(opt, `no port given for a non-persistent service (ipvsadm: "Zero port specified"); use VIP:PORT, or VIP:0 to take every port`);
  }
  if (m && !p) fail('-M', 'a persistence netmask needs persistence (-p)');
  if (p) {
    // ipvsadm's parse_timeout(optarg, 1, MAX_TIMEOUT): 1 s .. 31 days, else
    // "invalid timeout value `N' specified".
    if (p.value !== undefined && !(/^\d+$/.test(p.value) && Number(p.value) >= 1 && Number(p.value) <= MAX_PERSISTENCE_TIMEOUT)) {
      fail('-p', `invalid timeout value \`${p.value}' specified (persistence timeout: 1..${MAX_PERSISTENCE_TIMEOUT} seconds, 31 days)`);
    }
    const timeout = p.value === undefined ? DEFAULT_PERSISTENCE_TIMEOUT : Number(p.value);
    const persistence: Persistence = { timeout, netmask: formatNetmask(ref.family === 4 ? 32 : 128, ref.family) };
    if (m) {
      const plen = parseNetmask(m.value!, ref.family);
      if (typeof plen === 'string') fail('-M', plen);
      persistence.netmask = formatNetmask(plen, ref.family);
    }
    spec.persistence = persistence;
  }
  if (single(given, ['-o'])) {
    if (ref.protocol !== 'udp' && !ref.fwmark) fail('-o', 'one-packet scheduling is only for UDP services');
    spec.ops = true;
  }
  return spec;
}

function realserverFrom(given: Given[], ref: ServiceRef & { family: Family }, op: string, full: boolean): RealserverSpec {
  const r = single(given, ['-r']);
  if (!r) fail(op, 'a realserver is required (-r addr[:port])');
  const { address, port } = parseAddrPort('-r', r.value!);
  const fwd = full ? single(given, ['-g', '-i', '-m']) : undefined;
  const method: ForwardingMethod = fwd?.name === '-i' ? 'tun' : fwd?.name === '-m' ? 'nat' : 'dr';
  let rport = ref.port;
  if (ref.fwmark) {
    // A firewall-mark service's realservers keep the packet's port; IPVS stores the given one (0
    // when none) and ipvsadm prints it back.
    rport = port ?? 0;
  } else if (method === 'nat') {
    // IPVS NAT: RIP:rport may differ from the service port; an all-ports service keeps the
    // client's port (ipvsadm's "-r RIP" without a port there).
    if (port !== undefined && ref.port === 0 && port !== 0) {
      fail('-r', `port ${port} on an all-ports service: LVS-NAT keeps the client's destination port there`);
    }
    if (port !== undefined && ref.port !== 0) rport = port === 0 ? ref.port : port;
  } else if (port !== undefined && port !== ref.port && full) {
    fail('-r', `port ${port} differs from the service port ${ref.port}; DR and Tun forward to the service port and cannot change it (NAT, -m, can)`);
  }
  const spec: RealserverSpec = { address, port: rport, weight: 1, method: 'dr' };
  if (!full) return spec;
  checkTunnelOptions(given, method);
  if (method !== 'tun' && familyOf(address) !== ref.family) {
    fail('-r', `LVS-${method === 'nat' ? 'NAT' : 'DR'} cannot forward an IPv${ref.family} VIP to an IPv${familyOf(address)} realserver (only Tun, -i, may mix families)`);
  }
  spec.method = method;
  const w = single(given, ['-w']);
  if (w) spec.weight = parseIntIn('-w', 'weight', w.value, 0, MAX_WEIGHT);
  // -x / -y: as ipvsadm, absent is 0 (no threshold) on -a and -e alike.
  const x = single(given, ['-x']);
  const y = single(given, ['-y']);
  const upper = x ? parseIntIn('-x', 'upper threshold', x.value, 0, MAX_THRESHOLD) : 0;
  const lower = y ? parseIntIn('-y', 'lower threshold', y.value, 0, MAX_THRESHOLD) : 0;
  if (lower > upper && upper > 0) fail('-y', `lower threshold ${lower} is above the upper threshold ${upper}`);
  if (lower > 0 && upper === 0) fail('-y', `lower threshold ${lower} is above the upper threshold 0 (no -x)`);
  if (upper) spec.upperThreshold = upper;
  if (lower) spec.lowerThreshold = lower;
  const mac = single(given, ['--mac']);
  if (mac) {
    const canonical = canonicalMac(mac.value!);
    if (canonical === null) fail('--mac', `${JSON.stringify(mac.value)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
    spec.mac = canonical;
  }
  return spec;
}

/**
 * ipvsadm 1.30+'s tunnel options. `--tun-type ipip` is what IPVS does for -i and what ipvsadm
 * -S prints on every Tun realserver: accepted. GUE and GRE put the inner packet in UDP or GRE,
 * which the data plane does not build (it inserts one IPv4 / IPv6 header) and lvs_decap does not
 * take apart on the realserver: refused. The other options are refused as ipvsadm refuses them
 * for ipip (and with -g / -m: "Tunnel options conflict with forward method").
 */
function checkTunnelOptions(given: Given[], method: ForwardingMethod): void {
  const opts = given.filter((g) => (TUN_OPTIONS as readonly string[]).includes(g.name));
  if (opts.length === 0) return;
  if (method !== 'tun') fail(opts[0]!.name, 'tunnel options conflict with the forwarding method (they are for -i, LVS-Tun)');
  const type = single(given, ['--tun-type']);
  const t = type?.value ?? 'ipip';
  if (t === 'gue' || t === 'gre') {
    fail('--tun-type', `tunnel type ${t} is not supported: the data plane encapsulates in a plain IPv4 / IPv6 header (ipip, ip6ip6, 4in6, 6in4) only, and the realservers' decapsulator (lvs_decap) takes apart only those; ${t === 'gue' ? 'GUE (UDP, fou)' : 'GRE'} would need another outer header and the realserver's ${t === 'gue' ? 'fou/gue' : 'ip_gre'} module`);
  }
  if (t !== 'ipip') fail('--tun-type', `illegal tunnel type ${JSON.stringify(t)} (ipvsadm knows ipip, gue and gre; lvs-xdp does ipip)`);
  for (const g of opts) {
    if (g.name !== '--tun-type') fail(g.name, `illegal '${g.name.slice(2)}' option with the 'ipip' tunnel type (ports and checksums belong to gue / gre, which lvs-xdp does not do)`);
  }
}

function buildCommand(argv: readonly string[]): IpvsadmCommand {
  const given = scanOptions(argv);
  const cmds = given.filter((g) => COMMANDS[g.name]);
  if (cmds.length === 0) fail(undefined, 'no command (one of -A -E -D -C -a -e -d)');
  if (cmds.length > 1) fail(cmds[1]!.name, `only one command per rule (already ${cmds[0]!.name})`);
  const opName = cmds[0]!.name;
  const op = COMMANDS[opName]!;
  for (const g of given) {
    if (g === cmds[0] || (SERVICE_OPTIONS.includes(g.name) && op !== 'clear')) continue;
    if (!ALLOWED[op].includes(g.name)) fail(g.name, `not valid with ${opName}`);
  }
  if (op === 'clear') return { op };
  const ref = serviceFrom(given, opName);
  const service: ServiceRef = { ...(ref.fwmark ? { fwmark: ref.fwmark } : {}), protocol: ref.protocol, vip: ref.vip, port: ref.port };
  switch (op) {
    case 'add-service':
    case 'edit-service':
      return { op, service: serviceSpecFrom(given, ref) };
    case 'delete-service':
      return { op, service };
    case 'add-server':
    case 'edit-server': {
      const realserver = realserverFrom(given, ref, opName, true);
      // -e without --mac keeps the current MAC: only carry it when given.
      return { op, service, realserver };
    }
    case 'delete-server':
      return { op, service, address: realserverFrom(given, ref, opName, false).address };
  }
}

function toConfigError(e: unknown, location: string | undefined): never {
  if (e instanceof RuleError) {
    throw new ConfigError(e.message, { location, field: e.option });
  }
  throw e;
}

/** Parse one rule, e.g. ['-a', '-t', '10.0.0.1:80', '-r', '192.168.1.10', '-g', '-w', '2']. */
export function parseRule(argv: readonly string[], location?: string): IpvsadmCommand {
  try {
    const cmd = buildCommand(argv[0] === 'ipvsadm' ? argv.slice(1) : argv);
    return location === undefined ? cmd : { ...cmd, location };
  } catch (e) {
    return toConfigError(e, location);
  }
}

/** Parse a restore file: one rule a line, optional leading `ipvsadm`, blank lines and # comments. */
export function parseRules(text: string, source: string): IpvsadmCommand[] {
  const out: IpvsadmCommand[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const location = `${source}:${i + 1}`;
    const tokens = tokenize(trimmed);
    if (!Array.isArray(tokens)) throw new ConfigError(tokens.error, { location });
    out.push(parseRule(tokens, location));
  });
  return out;
}
