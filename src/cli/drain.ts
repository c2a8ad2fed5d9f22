/**
 * `lvs-xdp drain -t VIP:PORT [-r RIP]` and `lvs-xdp undrain ...`: a manual drain of a realserver
 * or of every realserver of a service. Drained realservers run at weight 0 (quiesced: their
 * established flows go on, they take no new ones) until undrained, whatever is applied meanwhile
 * (`lvs-xdp run` does not revert a drain as drift). Undrain gives back the weights from before.
 */
import { Command } from 'commander';
import { ConfigError } from '../errors.js';
import { parseAddrPort } from '../ipvsadm/index.js';
import type { DrainScope } from '../director/director.js';
import { withStateOptions, openRepaired, toJson, type StateOpts } from './common.js';
import { drainDirector, undrainDirector } from './director-drain.js';

function seconds(flag: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > max) throw new ConfigError(`${flag} ${JSON.stringify(v)}: seconds, more than 0 and at most ${max}`, { field: flag });
    return n;
  };
}

interface DrainOpts extends StateOpts { tcpService?: string; udpService?: string; realServer?: string; json?: boolean; director?: boolean; wait?: boolean; detach?: boolean; quiet: number; timeout: number }

/** Pure: the scope from -t/-u and -r. */
export function drainScope(o: Pick<DrainOpts, 'tcpService' | 'udpService' | 'realServer'>): DrainScope {
  if ((o.tcpService === undefined) === (o.udpService === undefined)) throw new ConfigError('give one service: -t VIP:PORT or -u VIP:PORT', { field: '-t' });
  const flag = o.tcpService !== undefined ? '-t' : '-u';
  const { address, port } = parseAddrPort(flag, (o.tcpService ?? o.udpService)!);
  const service = { protocol: flag === '-t' ? 'tcp' as const : 'udp' as const, vip: address, port: port ?? 0 };
  if (o.realServer === undefined) return { service };
  const rs = parseAddrPort('-r', o.realServer);
  return { service, realserver: rs.address };
}

function command(name: 'drain' | 'undrain'): Command {
  const what = name === 'drain'
    ? 'take a realserver (-r) or every realserver of a service out of new flows (weight 0) until undrain; established flows go on; --director: withdraw every VIP (ECMP)'
    : 'end a drain: the weights from before it come back; --director: announce the VIPs again';
  const cmd = withStateOptions(new Command(name))
    .description(what)
    .option('--director', 'the whole director: lvs-xdp run withdraws every VIP it announces, forwarding goes on (README "Several directors")');
  if (name === 'drain') {
    cmd.option('--wait', 'with --director: then wait until no packet has been forwarded for --quiet seconds')
      .option('--detach', 'with --director: wait as --wait, then detach')
      .option('--quiet <s>', 'seconds without a forwarded packet that mean the flows moved or ended', seconds('--quiet', 3600), 2)
      .option('--timeout <s>', 'give up waiting after this long (exit 1, not detached)', seconds('--timeout', 86400), 300);
  }
  return cmd
    .option('-t, --tcp-service <vip:port>', 'the TCP virtual service')
    .option('-u, --udp-service <vip:port>', 'the UDP virtual service')
    .option('-r, --real-server <rip>', 'one realserver of the service (default: all of them)')
    .option('--json', 'machine-readable change report')
    .action(async (o: DrainOpts) => {
      if (o.director) {
        if (o.tcpService !== undefined || o.udpService !== undefined || o.realServer !== undefined) throw new ConfigError('--director drains the whole director: give no -t, -u or -r', { field: '--director' });
        const d = await openRepaired(o);
        try {
          if (name === 'drain') await drainDirector(d, o, (l) => console.log(l));
          else undrainDirector(d, (l) => console.log(l));
        } finally {
          d.close();
        }
        return;
      }
      if (o.wait || o.detach) throw new ConfigError(`${o.wait ? '--wait' : '--detach'} goes with --director`, { field: o.wait ? '--wait' : '--detach' });
      const scope = drainScope(o);
      const d = await openRepaired(o);
      try {
        const r = name === 'drain' ? await d.drain(scope) : await d.undrain(scope);
        const who = `${scope.service.protocol} ${scope.service.vip.includes(':') ? `[${scope.service.vip}]` : scope.service.vip}:${scope.service.port}${scope.realserver ? ` -> ${scope.realserver}` : ' (every realserver)'}`;
        if (o.json) console.log(toJson(r.report));
        else console.log(name === 'drain' ? `drained ${who}: no new flows until lvs-xdp undrain` : `undrained ${who}`);
      } finally {
        d.close();
      }
    });
}

export function drainCommand(): Command {
  return command('drain');
}

export function undrainCommand(): Command {
  return command('undrain');
}
