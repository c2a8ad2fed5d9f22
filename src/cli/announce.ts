/**
 * `lvs-xdp announce bird-config`: a BIRD 2 configuration that announces the VIPs `lvs-xdp run`
 * puts in its routing table (settings.announce) to BGP neighbours (README "Several directors").
 */
import { Command } from 'commander';
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { birdConfig, DEFAULT_ANNOUNCE_PROTOCOL } from '../ops/announce.js';

interface BirdOpts { routerId: string; asn: string; neighbor: string[]; neighborAs: string; table: string; protocol: string; holdTime: string; keepaliveTime: string; bfd?: string; errorWait?: string }

function intOption(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${flag}: expected an integer ${min}-${max}, got ${JSON.stringify(v)}`, { field: flag });
  return n;
}

/** Pure: the generated text from the options. */
export function birdConfigFromOptions(o: BirdOpts): string {
  if (isIP(o.routerId) !== 4) throw new ConfigError(`--router-id: expected an IPv4 address, got ${JSON.stringify(o.routerId)}`, { field: '--router-id' });
  for (const n of o.neighbor) if (!isIP(n)) throw new ConfigError(`--neighbor: expected an address, got ${JSON.stringify(n)}`, { field: '--neighbor' });
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
  return cmd;
}
