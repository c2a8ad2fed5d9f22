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

interface DrainOpts extends StateOpts { tcpService?: string; udpService?: string; realServer?: string; json?: boolean }

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
    ? 'take a realserver (-r) or every realserver of a service out of new flows (weight 0) until undrain; established flows go on'
    : 'end a drain: the weights from before it come back';
  return withStateOptions(new Command(name))
    .description(what)
    .option('-t, --tcp-service <vip:port>', 'the TCP virtual service')
    .option('-u, --udp-service <vip:port>', 'the UDP virtual service')
    .option('-r, --real-server <rip>', 'one realserver of the service (default: all of them)')
    .option('--json', 'machine-readable change report')
    .action(async (o: DrainOpts) => {
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
