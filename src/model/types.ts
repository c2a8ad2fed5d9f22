/**
 * The director's model: virtual services and their realservers, as ipvsadm rules and the
 * declarative config file both describe them, and as the data plane is programmed from them.
 */
import { compareAddresses, formatAddrPort } from './address.js';

export type Protocol = 'tcp' | 'udp';
export const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp'];

/** The least-connection family: chosen per new flow by live connection counts (bpf/lvs_lc.h). */
export type LcScheduler = 'lc' | 'wlc' | 'sed' | 'nq' | 'twos' | 'fo' | 'ovf';
export const LC_SCHEDULERS: readonly LcScheduler[] = ['lc', 'wlc', 'sed', 'nq', 'twos', 'fo', 'ovf'];

/** Schedulers the XDP data plane implements. */
export type Scheduler = 'mh' | 'sh' | 'dh' | 'rr' | 'wrr' | LcScheduler;
export const SCHEDULERS: readonly Scheduler[] = ['mh', 'sh', 'dh', 'rr', 'wrr', ...LC_SCHEDULERS];

export function isLcScheduler(s: string): s is LcScheduler {
  return (LC_SCHEDULERS as readonly string[]).includes(s);
}

/** ipvsadm -A without -s (ipvsadm's own default); the config file's default is mh (CONFIG_DEFAULT_SCHEDULER). */
export const IPVSADM_DEFAULT_SCHEDULER: Scheduler = 'wlc';
export const CONFIG_DEFAULT_SCHEDULER: Scheduler = 'mh';

/** IPVS schedulers we recognise by name but do not run, with the reason. */
export const UNSUPPORTED_SCHEDULERS: Readonly<Record<string, string>> = {
  lblc: 'it keeps a cache of destination address -> realserver and moves an address when its realserver has more connections than its weight while some other has fewer than half of its own: a search over every realserver that the data plane does not make per packet (dh keeps destination locality, wlc balances by connections)',
  lblcr: 'it keeps a cache of destination address -> set of realservers that grows and shrinks by comparing every member\'s connections with every realserver\'s: a search over every realserver that the data plane does not make per packet (dh keeps destination locality, wlc balances by connections)',
};

/** LVS-DR (ipvsadm -g, gatewaying), LVS-Tun (-i, ipip) and LVS-NAT (-m, masquerading). */
export type ForwardingMethod = 'dr' | 'tun' | 'nat';
export const FORWARDING_METHODS: readonly ForwardingMethod[] = ['dr', 'tun', 'nat'];

/**
 * Scheduler flags (ipvsadm -b) in canonical order, the order ipvsadm prints them.
 * The *-fallback flags are kept for a faithful save but have no data plane effect: a realserver
 * with weight 0 simply owns no table slots, so there is nothing to fall back from.
 */
export type SchedFlag = 'sh-fallback' | 'sh-port' | 'mh-fallback' | 'mh-port';
export const SCHED_FLAGS: readonly SchedFlag[] = ['sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'];
export const FLAG_SCHEDULER: Readonly<Record<SchedFlag, Scheduler>> = {
  'sh-fallback': 'sh',
  'sh-port': 'sh',
  'mh-fallback': 'mh',
  'mh-port': 'mh',
};

/** Maglev table sizes (primes); 65537 as Katran, the others as IPVS mh and Cilium. */
export const TABLE_PRIMES: readonly number[] = [
  251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 65537, 131071,
];
/** The bound of rr / wrr rotations and least-connection candidate tables without a table-size
 *  (their tables are as long as their gcd-reduced weights, so this only caps large weight sums). */
export const DEFAULT_TABLE_SIZE = 65537;

/** Maglev slots per realserver at least (the Maglev paper's M > 100 N): tables are filled by
 *  turns, so equal weights get floor or ceil of M / N slots each, an imbalance of at most N / M. */
export const MAGLEV_SLOTS_PER_REAL = 100;
/** The smallest default Maglev table: one size from 1 to 10 realservers, where most pools are. */
export const MIN_DEFAULT_TABLE_SIZE = 1021;

/**
 * The default size of a Maglev (mh / sh / dh) table for `realservers` configured realservers: the
 * smallest of TABLE_PRIMES with at least MAGLEV_SLOTS_PER_REAL slots per realserver, at least
 * MIN_DEFAULT_TABLE_SIZE, at most the largest prime. A function of the count alone (weights,
 * drains, health and order of changes play no part), so directors given the same configuration
 * agree; the primes roughly double, so the size moves only when the count crosses 10, 20, 40, 81,
 * 163, 327 or 655 (each move rehashes every flow's slot: `table-size` pins a size).
 */
export function defaultTableSize(realservers: number): number {
  const want = Math.max(MIN_DEFAULT_TABLE_SIZE, MAGLEV_SLOTS_PER_REAL * realservers);
  return TABLE_PRIMES.find((p) => p >= want) ?? TABLE_PRIMES[TABLE_PRIMES.length - 1]!;
}

/** Whether a scheduler's table is a Maglev table (sized by slots, hashed), rather than a sequence. */
export function isMaglevScheduler(s: Scheduler): boolean {
  return s === 'mh' || s === 'sh' || s === 'dh';
}

/** The table size a service is compiled with: its table-size, else the default for its scheduler
 *  (Maglev: by its number of realservers; rr / wrr / least-connection: the DEFAULT_TABLE_SIZE cap). */
export function tableSizeOf(svc: Pick<VirtualService, 'scheduler' | 'tableSize' | 'realservers'>): number {
  if (svc.tableSize !== undefined) return svc.tableSize;
  return isMaglevScheduler(svc.scheduler) ? defaultTableSize(svc.realservers.length) : DEFAULT_TABLE_SIZE;
}

/** ipvsadm -p without a value. */
export const DEFAULT_PERSISTENCE_TIMEOUT = 300;
/** ipvsadm's MAX_TIMEOUT (31 days): -p accepts 1..this ("invalid timeout value `N' specified"). */
export const MAX_PERSISTENCE_TIMEOUT = 86400 * 31;
/** Connection idle timeouts (--set, settings.timeouts) keep their own wider bound. */
export const MAX_IDLE_TIMEOUT = 2 ** 31;
/** ipvsadm's fwmark range (parse_fwmark): 1..UINT_MAX. */
export const MAX_FWMARK = 0xffffffff;
export const MAX_WEIGHT = 65535;
/** ipvsadm -x / -y: ipvsadm takes 0..INT_MAX. */
export const MAX_THRESHOLD = 2 ** 31 - 1;

export interface Persistence {
  /** Seconds a persistence template lives after its last use. */
  timeout: number;
  /** Client grouping mask: dotted quad for IPv4 ("255.255.255.0"), prefix length for IPv6 ("64"). */
  netmask: string;
}

export interface Realserver {
  /** RIP, canonical text. Also the realserver's identity within its service. */
  address: string;
  /** DR and Tun: always the service port (they cannot rewrite it). NAT: the realserver's port,
   *  which may differ (0 on an all-ports service: the client's destination port is kept). A
   *  firewall-mark service's realservers keep the packet's port; their port is what was given (0
   *  when none), as IPVS stores and ipvsadm prints it. */
  port: number;
  /** 0..65535; 0 = quiesced (keeps existing flows, gets no new ones). */
  weight: number;
  method: ForwardingMethod;
  /** DR: the realserver's MAC; Tun: the next hop's MAC. Lower-case aa:bb:cc:dd:ee:ff. */
  mac?: string;
  /** Tun only: the router toward the RIP, when it is not on the director's link. */
  nextHop?: string;
  /** Egress interface, when not the ingress one. */
  ifname?: string;
  /** Opaque health-check settings, preserved for a later feature. */
  healthCheck?: unknown;
  /** ipvsadm -x: no new connections once active + inactive connections reach this (0 or absent: no limit). */
  upperThreshold?: number;
  /** ipvsadm -y: new connections again once below this (0 or absent: below 3/4 of the upper threshold). */
  lowerThreshold?: number;
}

export interface VirtualService {
  /** A firewall-mark service (ipvsadm -f): protocol tcp, vip 0.0.0.0 or :: (its family) and port
   *  0 stand in, as ipvsadm sets them; the mark's definition (DirectorConfig.marks) says which
   *  packets are its. */
  fwmark?: number;
  protocol: Protocol;
  /** VIP, canonical text (IPv6 compressed, lower case). */
  vip: string;
  /** 0 = all ports. */
  port: number;
  scheduler: Scheduler;
  /** Scheduler flags in SCHED_FLAGS order. */
  flags: SchedFlag[];
  persistence?: Persistence;
  /** One-packet scheduling (UDP only, as in ipvsadm). */
  ops: boolean;
  /** Lookup table size for mh/sh/dh; max sequence length for rr/wrr. */
  tableSize?: number;
  realservers: Realserver[];
  healthCheck?: unknown;
}

export interface TunnelSettings {
  /** Outer source address for IPv4 tunnels. */
  source4?: string;
  /** Outer source address for IPv6 tunnels. */
  source6?: string;
  /** MTU toward Tun realservers (outer packet). */
  mtu?: number;
  /** Outer TTL / hop limit. */
  ttl?: number;
}

/** Idle timeouts in seconds, as ipvsadm --set tcp tcpfin udp. */
export interface TimeoutSettings {
  tcp?: number;
  tcpFin?: number;
  udp?: number;
}

/** Director-wide settings (config file only; ipvsadm rules do not carry them). */
export interface DirectorSettings {
  tunnel?: TunnelSettings;
  /** Flow hash seed: directors that must agree on flows use the same one. */
  hashSeed?: number;
  timeouts?: TimeoutSettings;
  /** IPVS's expire_nodest_conn: a deleted realserver's (or service's) connection entries end at
   *  once (their packets are rescheduled) instead of waiting for it to come back. */
  expireNodestConn?: boolean;
  /** IPVS's expire_quiescent_template: persistent clients of a quiesced (weight 0) realserver
   *  are scheduled anew instead of staying on it. */
  expireQuiescentTemplate?: boolean;
  /** `lvs-xdp run` announces VIPs through a routing daemon: the kernel table of its VIP routes
   *  and their protocol number (default 201); not a data plane setting. */
  announce?: { table: number; protocol?: number; birdSocket?: string };
  /** `lvs-xdp run`'s connection sync daemons (IPVS's sync protocol; src/sync/daemons.ts); not a
   *  data plane setting. */
  sync?: SyncDaemonSetting[];
}

/** One sync daemon, as ipvsadm --start-daemon takes it, plus lvs-xdp's extensions. */
export interface SyncDaemonSetting {
  role: 'master' | 'backup';
  /** --mcast-interface */
  interface: string;
  syncid?: number;
  group?: string;
  port?: number;
  ttl?: number;
  maxlen?: number;
  /** Unicast peers that get every message too (lvs-xdp extension). */
  peers?: string[];
  /** false: unicast to / from the peers only. */
  multicast?: boolean;
  /** master: seconds between sends of what the data plane queued (default 0.2). */
  interval?: number;
  /** master: established entries are sent again this often while they live (s, default 10). */
  refresh?: number;
}

/** An inclusive destination port range. */
export interface PortRange {
  from: number;
  to: number;
}

/** One classification rule of a mark: protocol, destination address or prefix, ports. */
export interface MarkMatch {
  protocol: Protocol;
  /** Canonical `addr` (a host) or `addr/len` (a prefix, host bits zero). */
  address: string;
  /** Destination ports; empty = every port. */
  ports: PortRange[];
}

/**
 * A firewall mark as lvs-xdp classifies it (what `iptables -t mangle -A PREROUTING -p tcp -d VIP
 * --dport 80 -j MARK --set-mark 1` does for IPVS): packets matching any of its rules belong to
 * the firewall-mark service of that mark and their family, if one exists.
 */
export interface FirewallMark {
  mark: number;
  match: MarkMatch[];
}

export interface DirectorConfig {
  services: VirtualService[];
  settings?: DirectorSettings;
  /** Firewall-mark definitions (config file and `lvs-xdp fwmark`; ipvsadm rules have none). */
  marks?: FirewallMark[];
}

export function emptyConfig(): DirectorConfig {
  return { services: [] };
}

type ServiceKeyFields = Pick<VirtualService, 'protocol' | 'vip' | 'port'> & { fwmark?: number | undefined };

/** Service identity, e.g. `tcp 10.0.0.1:80`, `tcp [2001:db8::1]:80`, `fwm 1`, `fwm 1 ipv6`. */
export function serviceId(s: ServiceKeyFields): string {
  // A change at a thousand services asks for the ids of the services it leaves alone (the same
  // objects) in every pass: each is formatted once. The fields are compared, so an object
  // changed in place gets its new id.
  const m = idMemo.get(s);
  if (m && m.vip === s.vip && m.port === s.port && m.protocol === s.protocol && m.fwmark === s.fwmark) return m.id;
  const id = s.fwmark ? `fwm ${s.fwmark}${s.vip.includes(':') ? ' ipv6' : ''}` : `${s.protocol} ${formatAddrPort(s.vip, s.port)}`;
  idMemo.set(s, { protocol: s.protocol, vip: s.vip, port: s.port, fwmark: s.fwmark, id });
  return id;
}
const idMemo = new WeakMap<ServiceKeyFields, ServiceKeyFields & { id: string }>();

/** The stand-in address of a firewall-mark service of a family (ipvsadm leaves it zero). */
export function fwmarkVip(family: 4 | 6): string {
  return family === 6 ? '::' : '0.0.0.0';
}

/** A configuration's services by serviceId: one pass, for code that looks many of them up. */
export function servicesById<S extends ServiceKeyFields>(services: readonly S[]): Map<string, S> {
  return new Map(services.map((s) => [serviceId(s), s] as const));
}

/** Realserver identity within a service: its address (the port is the service's). */
export function realserverKey(r: Pick<Realserver, 'address'>): string {
  return r.address;
}

/** Why a scheduler name is refused, or null when the data plane implements it. */
export function schedulerProblem(name: string): string | null {
  if ((SCHEDULERS as readonly string[]).includes(name)) return null;
  const supported = `supported: ${SCHEDULERS.join(', ')}`;
  const why = Object.hasOwn(UNSUPPORTED_SCHEDULERS, name) ? UNSUPPORTED_SCHEDULERS[name] : undefined;
  if (why) return `scheduler ${name} is not supported by the XDP data plane: ${why} (${supported})`;
  return `unknown scheduler ${JSON.stringify(name)} (${supported})`;
}

/** Why a scheduler flag is refused for a scheduler, or null when fine. */
export function schedFlagProblem(flag: string, scheduler: string): string | null {
  if (!(SCHED_FLAGS as readonly string[]).includes(flag)) {
    return `unknown scheduler flag ${JSON.stringify(flag)} (known: ${SCHED_FLAGS.join(', ')})`;
  }
  const owner = FLAG_SCHEDULER[flag as SchedFlag];
  if (owner !== scheduler) return `scheduler flag ${flag} applies only to scheduler ${owner}, not ${scheduler}`;
  return null;
}

/** Sort flags into canonical order, dropping duplicates. */
export function canonicalFlags(flags: readonly string[]): SchedFlag[] {
  return SCHED_FLAGS.filter((f) => flags.includes(f));
}

const PROTOCOL_NUMBER: Readonly<Record<Protocol, number>> = { tcp: 6, udp: 17 };

/** Listing order (ipvsadm -L): protocol, address (IPv4 first), port; firewall-mark services
 *  after the others by mark, then family (libipvs's ipvs_cmp_services compares the mark first). */
export function compareServices(a: ServiceKeyFields, b: ServiceKeyFields): number {
  return (a.fwmark ?? 0) - (b.fwmark ?? 0) || PROTOCOL_NUMBER[a.protocol] - PROTOCOL_NUMBER[b.protocol]
    || compareAddresses(a.vip, b.vip) || a.port - b.port;
}
