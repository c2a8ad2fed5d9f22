/**
 * `lvs-xdp announce bird-config`: a BIRD 2 configuration that announces the VIPs `lvs-xdp run`
 * puts in its routing table (settings.announce) to BGP neighbours (README "Several directors").
 * `lvs-xdp announce keepalived-config`: keepalived's VRRP instances that move a director pair's
 * VIPs (README "Active/standby with keepalived (VRRP)").
 */
import { Command } from 'commander';
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { birdConfig, DEFAULT_ANNOUNCE_PROTOCOL } from '../ops/announce.js';
import { keepalivedVrrpConfig, instancesFor } from '../ops/keepalived-vrrp.js';
import { readConfigFile } from '../config/file.js';

interface BirdOpts { routerId: string; asn: string; neighbor: string[]; neighborAs: string; table: string; protocol: string; holdTime: string; keepaliveTime: string; bfd?: string; errorWait?: string }

function intOption(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`expected an integer ${min}-${max}, got ${JSON.stringify(v)}`, { field: flag });
  return n;
}

/** Pure: the generated text from the options. */
export function birdConfigFromOptions(o: BirdOpts): string {
  if (isIP(o.routerId) !== 4) throw new ConfigError(`expected an IPv4 address, got ${JSON.stringify(o.routerId)}`, { field: '--router-id' });
  for (const n of o.neighbor) if (!isIP(n)) throw new ConfigError(`expected an address, got ${JSON.stringify(n)}`, { field: '--neighbor' });
  if (o.neighbor.length === 0) throw new ConfigError('give at least one --neighbor', { field: '--neighbor' });
  const asn = (flag: string, v: string) => intOption(flag, v, 1, 4294967295);
  const hold = intOption('--hold-time', o.holdTime, 3, 65535);
  return birdConfig({
    routerId: o.routerId, asn: asn('--asn', o.asn), neighbors: o.neighbor.map((address) => ({ address, asn: asn('--neighbor-as', o.neighborAs) })),
    table: intOption('--table', o.table, 1, 0xfffffff0), protocol: intOption('--protocol', o.protocol, 5, 255),
    holdTime: hold, keepaliveTime: intOption('--keepalive-time', o.keepaliveTime, 1, Math.floor(hold / 3)),
    ...(o.bfd !== undefined ? { bfdMs: intOption('--bfd', o.bfd, 10, 10_000) } : {}),
    ...(o.errorWait !== undefined ? { errorWait: errorWait(o.errorWait) } : {}),
  });
}

function errorWait(v: string): [number, number] {
  const [a, b = a] = v.split(',');
  const min = intOption('--error-wait', a!, 1, 3600);
  const max = intOption('--error-wait', b!, 1, 3600);
  if (max < min) throw new ConfigError(`--error-wait ${v}: the maximum is below the minimum`, { field: '--error-wait' });
  return [min, max];
}

interface KeepalivedOpts { file?: string; vip: string[]; routerId: string; interface: string; priority: string; vrid: string; vrid6?: string; advertInt: string; useVmac?: boolean; preempt: boolean; preemptDelay?: string }

function secondsOption(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(n)) throw new ConfigError(`expected seconds, got ${JSON.stringify(v)}`, { field: flag });
  return n;
}

/** Pure but for reading `-f FILE`: the generated text from the options (VIPs from the file's services and --vip). */
export function keepalivedConfigFromOptions(o: KeepalivedOpts, read: (path: string) => string[] = (p) => readConfigFile(p).services.map((s) => s.vip)): string {
  for (const v of o.vip) if (!isIP(v)) throw new ConfigError(`expected an address, got ${JSON.stringify(v)}`, { field: '--vip' });
  const vips = [...(o.file !== undefined ? read(o.file) : []), ...o.vip];
  if (vips.length === 0) throw new ConfigError('give -f FILE (its services\' VIPs) or --vip', { field: '--vip' });
  const vrid = intOption('--vrid', o.vrid, 1, 255);
  return keepalivedVrrpConfig({
    routerId: o.routerId, interface: o.interface, priority: intOption('--priority', o.priority, 1, 254), advertInt: secondsOption('--advert-int', o.advertInt),
    preempt: o.preempt, ...(o.preemptDelay !== undefined ? { preemptDelay: secondsOption('--preempt-delay', o.preemptDelay) } : {}),
    instances: instancesFor(vips, vrid, o.useVmac === true, o.vrid6 !== undefined ? intOption('--vrid6', o.vrid6, 1, 255) : vrid + 1),
  });
}

export function announceCommand(): Command {
  const cmd = new Command('announce').description('VIP announcement through a routing daemon (BIRD 2)');
  cmd.command('bird-config')
    .description('print a BIRD 2 configuration exporting the VIP routes of lvs-xdp run (settings.announce) over BGP')
    .requiredOption('--router-id <ipv4>', 'BIRD router id (an IPv4 address of this host)')
    .requiredOption('--asn <n>', 'this director\'s AS number')
    .requiredOption('--neighbor <addr>', 'a BGP neighbour (router) address; repeat for several', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .requiredOption('--neighbor-as <n>', 'the neighbours\' AS number')
    .option('--table <n>', 'kernel table of the VIP routes (settings.announce.table)', '201')
    .option('--protocol <n>', 'route protocol number of the VIP routes (settings.announce.protocol)', String(DEFAULT_ANNOUNCE_PROTOCOL))
    .option('--hold-time <s>', 'BGP hold time: a dead director\'s routes go after at most this long', '9')
    .option('--keepalive-time <s>', 'BGP keepalive time (at most a third of the hold time)', '3')
    .option('--error-wait <min[,max]>', 'seconds a failed session waits before it restarts (BIRD\'s error wait time; default 60,300)')
    .option('--bfd <ms>', 'BFD on the BGP sessions with this interval (ms; down after 3 missed): a dead link withdraws in 3 intervals')
    .action((o: BirdOpts) => { process.stdout.write(birdConfigFromOptions(o)); });
  cmd.command('keepalived-config')
    .description('print keepalived\'s VRRP configuration (no virtual_server) that moves the VIPs of a director pair; lvs-xdp stays attached on both')
    .option('-f, --file <file>', 'the directors\' configuration file: every service\'s VIP')
    .option('--vip <addr>', 'a VIP (repeat; added to those of -f)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .requiredOption('--priority <n>', 'this director\'s VRRP priority (1-254; the higher one is master)')
    .option('--router-id <name>', 'keepalived router_id', 'lvs-xdp')
    .option('--interface <dev>', 'the interface the VIPs and adverts are on (the one lvs-xdp is attached to)', 'eth0')
    .option('--vrid <n>', 'virtual router id of the IPv4 instance (1-255; unique on the LAN)', '51')
    .option('--vrid6 <n>', 'virtual router id of the IPv6 instance (default --vrid + 1)')
    .option('--advert-int <s>', 'advertisement interval (VRRPv3: 0.01-40.95 s); the backup takes over after about 3 of them', '1')
    .option('--use-vmac', 'VIPs on a macvlan vrrp.VRID with the VRRP virtual MAC (lvs-xdp accepts it within one resync of run)')
    .option('--no-preempt', 'nopreempt: a returning director stays backup')
    .option('--preempt-delay <s>', 'seconds a starting director waits before it takes the VIPs back (longer than run\'s --resync with --use-vmac)')
    .action((o: KeepalivedOpts) => { process.stdout.write(keepalivedConfigFromOptions(o)); });
  return cmd;
}
