/**
 * ipvsadm output formats, byte for byte: -S -n (save), -L -n (list), --stats, --rate, -c.
 * Pure: the caller passes the config and the numbers (connection counts, counters, rates).
 * Column layouts follow ipvsadm's printf formats, noted at each function.
 */
import { compareAddresses, formatAddrPort } from '../model/address.js';
import { compareServices, serviceId, type DirectorConfig, type Protocol, type Realserver, type VirtualService } from '../model/types.js';

function compareRealservers(a: Realserver, b: Realserver): number {
  return compareAddresses(a.address, b.address) || a.port - b.port;
}

interface Sorted {
  svc: VirtualService;
  realservers: Realserver[];
}

function sorted(config: DirectorConfig): Sorted[] {
  return [...config.services].sort(compareServices).map((svc) => ({
    svc,
    realservers: [...svc.realservers].sort(compareRealservers),
  }));
}

/** Key of one destination (service + realserver) in the count / stats maps. */
export function destinationKey(svc: Pick<VirtualService, 'protocol' | 'vip' | 'port'>, rs: Pick<Realserver, 'address'>): string {
  return `${serviceId(svc)} -> ${rs.address}`;
}

const SWITCH: Record<Realserver['method'], string> = { dr: '-g', tun: '-i', nat: '-m' };
const FORWARD_NAME: Record<Realserver['method'], string> = { dr: 'Route', tun: 'Tunnel', nat: 'Masq' };

function svcSwitch(svc: VirtualService): string {
  if (svc.fwmark) return `-f ${svc.fwmark}${svc.vip.includes(':') ? ' -6' : ''}`;
  return `${svc.protocol === 'tcp' ? '-t' : '-u'} ${formatAddrPort(svc.vip, svc.port)}`;
}

/** Persistence mask, printed only when it groups more than one client address. */
function maskText(svc: VirtualService): string | undefined {
  const mask = svc.persistence?.netmask;
  if (mask === undefined || mask === '255.255.255.255' || mask === '128') return undefined;
  return mask;
}

/**
 * `ipvsadm -S -n`: `-A <svc> -s <sched> [-p N [-M mask]] [-o] [-b flags]`, then
 * `-a <svc> -r <addr:port> <-g|-i> -w <weight>` per realserver, ` --tun-type ipip` on Tun ones as
 * ipvsadm 1.30+ prints it (plus `-x` / `-y` when set, `--mac` and `--table-size`, our additions).
 * <svc> is `-t|-u addr:port` or `-f MARK` (`-f MARK -6` for IPv6).
 * Next hops, interfaces and health checks have no ipvsadm syntax and are not saved.
 */
export function formatSave(config: DirectorConfig): string {
  let out = '';
  for (const { svc, realservers } of sorted(config)) {
    const s = svcSwitch(svc);
    let line = `-A ${s} -s ${svc.scheduler}`;
    if (svc.persistence) {
      line += ` -p ${svc.persistence.timeout}`;
      const mask = maskText(svc);
      if (mask !== undefined) line += ` -M ${mask}`;
    }
    if (svc.ops) line += ' -o';
    if (svc.flags.length > 0) line += ` -b ${svc.flags.join(',')}`;
    if (svc.tableSize !== undefined) line += ` --table-size ${svc.tableSize}`;
    out += `${line}\n`;
    for (const rs of realservers) {
      let rline = `-a ${s} -r ${formatAddrPort(rs.address, rs.port)} ${SWITCH[rs.method]} -w ${rs.weight}`;
      // ipvsadm 1.30+ prints the tunnel type on every Tun realserver (IPVS's default is ipip).
      if (rs.method === 'tun') rline += ' --tun-type ipip';
      // ipvsadm -S does not save thresholds; lvs-xdp does (-x / -y are ipvsadm -a options, so
      // ipvsadm -R reads the line too).
      if (rs.upperThreshold) rline += ` -x ${rs.upperThreshold}`;
      if (rs.lowerThreshold) rline += ` -y ${rs.lowerThreshold}`;
      if (rs.mac !== undefined) rline += ` --mac ${rs.mac}`;
      out += `${rline}\n`;
    }
  }
  return out;
}

export interface HeaderOptions {
  /** lvs-xdp's version, printed where ipvsadm names the kernel's IPVS version. */
  version: string;
  /** Printed as `(size=N)` like IPVS's connection hash size; omitted when undefined. */
  tableSizeLabel?: number;
  /** Program name on the first line (default lvs-xdp). */
  product?: string;
  /** No version line: ipvsadm prints none when listing one service (`-L -t VIP:PORT`). */
  noVersionLine?: boolean;
}

function versionLine(opts: HeaderOptions): string {
  if (opts.noVersionLine) return '';
  const size = opts.tableSizeLabel === undefined ? '' : ` (size=${opts.tableSizeLabel})`;
  return `${opts.product ?? 'lvs-xdp'} version ${opts.version}${size}\n`;
}

/** `TCP  10.0.0.1:80` (protocol in 4 columns, a space, addr:port). */
function svcName(svc: VirtualService): string {
  if (svc.fwmark) return `FWM  ${svc.fwmark}${svc.vip.includes(':') ? ' IPv6' : ''}`;
  return `${svc.protocol.toUpperCase().padEnd(4)} ${formatAddrPort(svc.vip, svc.port)}`;
}

export interface ConnCounts {
  active: number;
  inactive: number;
}

export interface ListOptions extends HeaderOptions {
  /** Per destination (destinationKey) connection counts; missing = 0. */
  conns?: ReadonlyMap<string, ConnCounts>;
  /** --thresholds: header `%-33s %-10s x4`, real lines `  -> %-28s %-10u %-10u %-10u %-10u`
   *  (Uthreshold Lthreshold ActiveConn InActConn); service lines as without it. */
  thresholds?: boolean;
}

/**
 * `ipvsadm -L -n`. Service line: `%s %s` of name and scheduler, then ` (flags)`,
 * ` persistent N`, ` mask M`, ` ops`. Real line: `  -> %-28s %-7s %-6d %-10u %-10u`.
 */
export function formatList(config: DirectorConfig, opts: ListOptions): string {
  let out = versionLine(opts);
  if (opts.thresholds) {
    out += `${'Prot LocalAddress:Port'.padEnd(33)} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((c) => c.padEnd(10)).join(' ')}\n`;
    out += '  -> RemoteAddress:Port\n';
  } else {
    out += 'Prot LocalAddress:Port Scheduler Flags\n';
    out += '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
  }
  for (const { svc, realservers } of sorted(config)) {
    let line = `${svcName(svc)} ${svc.scheduler}`;
    if (svc.flags.length > 0) line += ` (${svc.flags.join(',')})`;
    if (svc.persistence) {
      line += ` persistent ${svc.persistence.timeout}`;
      const mask = maskText(svc);
      if (mask !== undefined) line += ` mask ${mask}`;
    }
    if (svc.ops) line += ' ops';
    out += `${line}\n`;
    for (const rs of realservers) {
      const c = opts.conns?.get(destinationKey(svc, rs)) ?? { active: 0, inactive: 0 };
      if (opts.thresholds) {
        out += `  -> ${formatAddrPort(rs.address, rs.port).padEnd(28)} ${[rs.upperThreshold ?? 0, rs.lowerThreshold ?? 0, c.active, c.inactive].map((n) => String(n).padEnd(10)).join(' ')}\n`;
        continue;
      }
      out += `  -> ${formatAddrPort(rs.address, rs.port).padEnd(28)} ${FORWARD_NAME[rs.method].padEnd(7)} `
        + `${String(rs.weight).padEnd(6)} ${String(c.active).padEnd(10)} ${String(c.inactive).padEnd(10)}\n`;
    }
  }
  return out;
}

export type Counter = number | bigint;

/**
 * ipvsadm's print_largenum. Exact: `%*llu` with width 9, or the digits + 1 when longer than 8.
 * Otherwise `%9llu` below 1e8, then value/1e3 `%8lluK` below 1e9, /1e6 `%8lluM` below 1e11,
 * /1e9 `%8lluG` below 1e14, else /1e12 `%8lluT`.
 */
export function formatLargeNumber(value: Counter, exact = false): string {
  const v = BigInt(value);
  const digits = v.toString();
  if (exact) return digits.padStart(digits.length <= 8 ? 9 : digits.length + 1);
  if (v < 100_000_000n) return digits.padStart(9);
  const scaled = (div: bigint, unit: string): string => `${(v / div).toString().padStart(8)}${unit}`;
  if (v < 1_000_000_000n) return scaled(1_000n, 'K');
  if (v < 100_000_000_000n) return scaled(1_000_000n, 'M');
  if (v < 100_000_000_000_000n) return scaled(1_000_000_000n, 'G');
  return scaled(1_000_000_000_000n, 'T');
}

export interface StatsRow {
  conns: Counter;
  inPkts: Counter;
  outPkts: Counter;
  inBytes: Counter;
  outBytes: Counter;
}

export interface RateRow {
  cps: Counter;
  inPps: Counter;
  outPps: Counter;
  inBps: Counter;
  outBps: Counter;
}

export interface NumbersOptions<Row> extends HeaderOptions {
  /** Rows by serviceId (services) and destinationKey (realservers); missing = zeros. */
  rows?: ReadonlyMap<string, Row>;
  /** --exact: full numbers instead of K/M/G/T. */
  exact?: boolean;
}

/** Shared layout of --stats and --rate: header `%-33s %8s x5`, rows `%-33s` / `  -> %-28s` + numbers. */
function formatNumbers<Row>(
  config: DirectorConfig, opts: NumbersOptions<Row>, columns: readonly string[], values: (row: Row | undefined) => Counter[],
): string {
  let out = versionLine(opts);
  out += `${'Prot LocalAddress:Port'.padEnd(33)}${columns.map((c) => ` ${c.padStart(8)}`).join('')}\n`;
  out += '  -> RemoteAddress:Port\n';
  const numbers = (row: Row | undefined): string => values(row).map((v) => formatLargeNumber(v, opts.exact)).join('');
  for (const { svc, realservers } of sorted(config)) {
    out += `${svcName(svc).padEnd(33)}${numbers(opts.rows?.get(serviceId(svc)))}\n`;
    for (const rs of realservers) {
      out += `  -> ${formatAddrPort(rs.address, rs.port).padEnd(28)}${numbers(opts.rows?.get(destinationKey(svc, rs)))}\n`;
    }
  }
  return out;
}

/** `ipvsadm -L -n --stats [--exact]`. */
export function formatStats(config: DirectorConfig, opts: NumbersOptions<StatsRow>): string {
  return formatNumbers(config, opts, ['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'],
    (r) => (r ? [r.conns, r.inPkts, r.outPkts, r.inBytes, r.outBytes] : [0, 0, 0, 0, 0]));
}

/** `ipvsadm -L -n --rate [--exact]`. */
export function formatRate(config: DirectorConfig, opts: NumbersOptions<RateRow>): string {
  return formatNumbers(config, opts, ['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'],
    (r) => (r ? [r.cps, r.inPps, r.outPps, r.inBps, r.outBps] : [0, 0, 0, 0, 0]));
}

export interface Endpoint {
  address: string;
  port: number;
}

export interface ConnectionEntry {
  protocol: Protocol;
  /** Seconds until the entry expires. */
  expire: number;
  /** IPVS state name: ESTABLISHED, SYN_RECV, FIN_WAIT, CLOSE, ... or UDP. */
  state: string;
  client: Endpoint;
  virtual: Endpoint;
  realserver: Endpoint;
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * `ipvsadm -L -n -c`: `%-3s %-6s %-11s %-18s %-18s %s` of protocol, `%02d:%02d` expiry
 * (minutes:seconds), state, client, virtual and destination, in the given order (ipvsadm prints
 * the kernel's order, unsorted).
 */
export function formatConnections(entries: readonly ConnectionEntry[]): string {
  let out = 'IPVS connection entries\n';
  out += 'pro expire state       source             virtual            destination\n';
  for (const e of entries) {
    const expire = Math.max(0, Math.floor(e.expire));
    const ep = (p: Endpoint): string => formatAddrPort(p.address, p.port);
    out += `${e.protocol.toUpperCase().padEnd(3)} ${`${two(Math.floor(expire / 60))}:${two(expire % 60)}`.padEnd(6)} `
      + `${e.state.padEnd(11)} ${ep(e.client).padEnd(18)} ${ep(e.virtual).padEnd(18)} ${ep(e.realserver)}\n`;
  }
  return out;
}
