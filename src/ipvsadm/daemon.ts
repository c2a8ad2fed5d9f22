/**
 * ipvsadm's sync daemon commands, as ipvsadm 1.31 reads and prints them (pure):
 *   ipvsadm --start-daemon master|backup [--mcast-interface IF] [--syncid ID] [--sync-maxlen N]
 *           [--mcast-group ADDR] [--mcast-port PORT] [--mcast-ttl TTL]
 *   ipvsadm --stop-daemon master|backup
 *   ipvsadm -L --daemon     (one line per running daemon)
 * A director runs at most one master and one backup daemon (both at once is allowed, as in IPVS).
 * Defaults are filled the way the kernel fills them when it starts the daemon
 * (start_sync_thread): the listing shows the values in use, not only those given.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { SYNC_GROUP4, SYNC_PORT, SYNC_TTL, syncMaxlen } from '../sync/proto.js';

export type SyncRole = 'master' | 'backup';

/** One sync daemon's settings as given on the command line (unset: the kernel's default). */
export interface SyncDaemonArgs {
  role: SyncRole;
  /** --mcast-interface: the interface sync messages go out of / are received on. */
  mcastInterface: string;
  /** --syncid: 0..255 (a backup with 0 takes every master's messages). */
  syncid: number;
  syncMaxlen?: number;
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

/** A running sync daemon's settings, every default filled in (what -L --daemon prints). */
export interface SyncDaemonConfig {
  role: SyncRole;
  mcastInterface: string;
  syncid: number;
  syncMaxlen: number;
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
  /** lvs-xdp extension: unicast peers that get every message too (not an ipvsadm option). */
  peers: string[];
}

export type DaemonCommand =
  | { op: 'start-daemon'; daemon: SyncDaemonArgs }
  | { op: 'stop-daemon'; role: SyncRole }
  | { op: 'list-daemon' };

/** ipvsadm's default multicast interface (DEF_MCAST_IFN) when --mcast-interface is not given. */
export const DEFAULT_MCAST_INTERFACE = 'eth0';
/** IP_VS_IFNAME_MAXLEN: the interface name with its terminating NUL. */
const IFNAME_MAXLEN = 16;

export const VALUE_OPTIONS = ['--start-daemon', '--stop-daemon', '--mcast-interface', '--syncid', '--sync-maxlen', '--mcast-group', '--mcast-port', '--mcast-ttl'] as const;
type ValueOption = (typeof VALUE_OPTIONS)[number];
const START_OPTIONS: readonly ValueOption[] = ['--mcast-interface', '--syncid', '--sync-maxlen', '--mcast-group', '--mcast-port', '--mcast-ttl'];

function fail(msg: string): never {
  throw new ConfigError(`ipvsadm: ${msg}`);
}

function number(opt: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) fail(`${opt}: "${text}" is not a number`);
  const n = Number(text);
  if (n < min || n > max) fail(`${opt}: ${n} is out of range ${min}..${max}`);
  return n;
}

function role(opt: string, text: string): SyncRole {
  if (text !== 'master' && text !== 'backup') fail(`${opt}: "${text}" is not master or backup`);
  return text;
}

/** Whether an address is an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast group. */
export function isMulticast(addr: string): boolean {
  const f = isIP(addr);
  if (f === 4) {
    const first = Number(addr.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return f === 6 && /^ff[0-9a-f]{2}:/i.test(addr);
}

/**
 * The daemon command in argv (already split into words, short options expanded), or undefined
 * when argv is not a daemon command. Refuses what ipvsadm refuses: an unknown role, values out
 * of range, an option given twice, a start option on another command, a group that is not a
 * multicast address.
 */
export function parseDaemonArgs(argv: readonly string[]): DaemonCommand | undefined {
  const values = new Map<ValueOption, string>();
  let list = false;
  let daemonFlag = false;
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if ((VALUE_OPTIONS as readonly string[]).includes(w)) {
      const opt = w as ValueOption;
      if (values.has(opt)) fail(`${opt} given twice`);
      const v = argv[i + 1];
      if (v === undefined) fail(`${opt} needs a value`);
      values.set(opt, v);
      i++;
    } else if (w === '-L' || w === '-l' || w === '--list') {
      list = true;
    } else if (w === '--daemon') {
      daemonFlag = true;
    } else if (w === '-n' || w === '--numeric') {
      // -L -n --daemon: numeric output changes nothing in the daemon listing
    } else if (values.has('--start-daemon') || values.has('--stop-daemon') || daemonFlag) {
      fail(`unexpected argument "${w}"`);
    } else {
      return undefined;
    }
  }
  const start = values.get('--start-daemon');
  const stop = values.get('--stop-daemon');
  const commands = [start !== undefined, stop !== undefined, list && daemonFlag].filter(Boolean).length;
  if (commands === 0) {
    if (daemonFlag) fail('--daemon is a listing option: use -L --daemon');
    if ([...values.keys()].length > 0) fail(`${[...values.keys()][0]} needs --start-daemon`);
    return undefined;
  }
  if (commands > 1) fail('only one of --start-daemon, --stop-daemon, -L --daemon at a time');
  if (list && !daemonFlag) fail('-L with --start-daemon or --stop-daemon');
  if (start === undefined) {
    for (const o of START_OPTIONS) if (o !== '--syncid' && values.has(o)) fail(`${o} is an option of --start-daemon`);
    if (stop !== undefined) return { op: 'stop-daemon', role: role('--stop-daemon', stop) };
    if (values.has('--syncid')) fail('--syncid is an option of --start-daemon');
    return { op: 'list-daemon' };
  }
  const ifname = values.get('--mcast-interface') ?? DEFAULT_MCAST_INTERFACE;
  if (ifname.length === 0 || ifname.length >= IFNAME_MAXLEN || /[\s/]/.test(ifname)) fail(`--mcast-interface: "${ifname}" is not an interface name`);
  const daemon: SyncDaemonArgs = {
    role: role('--start-daemon', start),
    mcastInterface: ifname,
    syncid: values.has('--syncid') ? number('--syncid', values.get('--syncid')!, 0, 255) : 0,
  };
  const maxlen = values.get('--sync-maxlen');
  if (maxlen !== undefined) daemon.syncMaxlen = number('--sync-maxlen', maxlen, 1, 65535 - 28);
  const group = values.get('--mcast-group');
  if (group !== undefined) {
    if (!isMulticast(group)) fail(`--mcast-group: "${group}" is not a multicast address`);
    daemon.mcastGroup = group;
  }
  const port = values.get('--mcast-port');
  if (port !== undefined) daemon.mcastPort = number('--mcast-port', port, 1, 65535);
  const ttl = values.get('--mcast-ttl');
  if (ttl !== undefined) daemon.mcastTtl = number('--mcast-ttl', ttl, 1, 255);
  return { op: 'start-daemon', daemon };
}

/**
 * The settings a daemon runs with, defaults filled as the kernel fills them: group 224.0.0.81
 * (IPv4) when none is given (the kernel has no IPv6 default: an IPv6 group is always given),
 * port 8848, TTL 1, and sync-maxlen from the interface MTU (syncMaxlen).
 */
export function resolveDaemon(a: SyncDaemonArgs, ifaceMtu: number, peers: readonly string[] = []): SyncDaemonConfig {
  const group = a.mcastGroup ?? SYNC_GROUP4;
  const family = isIP(group) === 6 ? 6 : 4;
  return {
    role: a.role,
    mcastInterface: a.mcastInterface,
    syncid: a.syncid,
    syncMaxlen: syncMaxlen({ role: a.role, family, ifaceMtu, ...(a.syncMaxlen !== undefined ? { requested: a.syncMaxlen } : {}) }),
    mcastGroup: group,
    mcastPort: a.mcastPort ?? SYNC_PORT,
    mcastTtl: a.mcastTtl ?? SYNC_TTL,
    peers: [...peers],
  };
}

/**
 * `ipvsadm -L --daemon`: one line per running daemon, the master's first, e.g.
 *   master sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
 * Nothing (empty string) when no daemon runs, as ipvsadm prints nothing.
 */
export function formatDaemonList(daemons: readonly SyncDaemonConfig[]): string {
  const order: SyncRole[] = ['master', 'backup'];
  return order.flatMap((r) => daemons.filter((d) => d.role === r).map((d) =>
    `${d.role} sync daemon (mcast=${d.mcastInterface}, syncid=${d.syncid}, maxlen=${d.syncMaxlen}, ` +
    `group=${d.mcastGroup}, port=${d.mcastPort}, ttl=${d.mcastTtl})\n`)).join('');
}
