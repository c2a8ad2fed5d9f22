/** `lvs-xdp attach IFACE [-f FILE]` and `lvs-xdp detach [IFACE]`. */
import { Command, Option } from 'commander';
import { Director } from '../director/director.js';
import { existsSync } from 'node:fs';
import { ConfigError, NotAttachedError, StateError } from '../errors.js';
import { statePaths } from '../director/paths.js';
import type { DirectorSizes } from '../dataplane/loader.js';
import { readConfigFileKind, desiredConfig } from '../config/file.js';
import { announceNeighbours, localVipsOn } from '../ops/neighprobe.js';
import { withStateOptions, stateOptions, warnUnresolved, warnNatUnattached, type StateOpts } from './common.js';

function count(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new ConfigError(`${JSON.stringify(v)} is not a positive integer`, { field: `--${name}` });
    return Number(v);
  };
}

interface AttachOpts extends StateOpts {
  file?: string; mode: 'auto' | 'native' | 'generic'; preset: 'default' | 'small'; force?: boolean; multiprog?: boolean;
  maxServices?: number; maxReals?: number; maxConns?: number; maxPersist?: number; maxFrags?: number;
  ipv6: boolean; tun: boolean; icmp: boolean; frag: boolean; announce: boolean;
}

/**
 * Neighbours may cache another MAC for the VIPs (the interface was recreated or its NIC
 * replaced, or another director held them): tell the link, as keepalived does on taking a VIP
 * over, instead of leaving clients on the old MAC until their ARP / ND entries time out (tens of
 * seconds, longer while TCP keeps confirming them). A failure only warns: the attach stands.
 */
function announceVips(d: Director, iface: string): void {
  const vips = localVipsOn(d.config.services.map((s) => s.vip), iface);
  if (vips.length === 0) return;
  try {
    announceNeighbours(iface, vips);
    console.log(`announced ${vips.join(', ')} on ${iface} (gratuitous ARP / unsolicited neighbour advertisement)`);
  } catch (e) {
    console.error(`lvs-xdp: warning: could not announce ${vips.join(', ')} on ${iface}: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** "attached to eth0 (native mode)", with the driver's refusal when auto fell back to generic. */
function attachedLine(d: Director, iface: string): string {
  const st = d.linkStatus().find((i) => i.name === iface);
  const shared = st?.sharing === 'chain' ? ', sharing it by tail calls: lvs_root runs the interface\'s lvs_chain' : '';
  return `attached to ${iface} (${st?.mode ?? 'unknown'} mode${st?.genericBecause ? `: ${st.genericBecause}` : ''}${shared})`;
}

export function attachCommand(): Command {
  return withStateOptions(new Command('attach'))
    .description('load the director (first time) and attach it to an interface')
    .argument('<iface>', 'interface the VIP traffic arrives on')
    .option('-f, --file <file>', 'configuration to apply after attaching (YAML, JSON or ipvsadm rules)')
    .addOption(new Option('--mode <mode>', 'XDP mode').choices(['auto', 'native', 'generic']).default('auto'))
    .addOption(new Option('--preset <preset>', 'map sizes: default, or small (fits a 128 MB box)').choices(['default', 'small']).default('default'))
    .option('--max-services <n>', 'virtual services the maps hold (first attach only)', count('max-services'))
    .option('--max-reals <n>', 'realservers over all services', count('max-reals'))
    .option('--max-conns <n>', 'connection table entries', count('max-conns'))
    .option('--max-persist <n>', 'persistence templates', count('max-persist'))
    .option('--max-frags <n>', 'tracked fragmented datagrams', count('max-frags'))
    .option('--no-ipv6', 'load without IPv6 support (IPv6 goes to the kernel)')
    .option('--no-tun', 'load without LVS-Tun')
    .option('--no-icmp', 'load without ICMP error handling')
    .option('--no-frag', 'load without fragment tracking')
    .option('--no-announce', 'do not send gratuitous ARP / unsolicited NA for the VIPs local on the interface')
    .option('--force', 'replace a foreign XDP program already on the interface')
    .option('--multiprog', 'share the interface with other XDP programs (a root program and tail calls; the default where lvs-xdp\'s root already runs)')
    .action(async (iface: string, o: AttachOpts) => {
      // Read the file first: a bad file attaches nothing.
      const file = o.file === undefined ? undefined : readConfigFileKind(o.file);
      const sizes: Partial<DirectorSizes> = {};
      if (o.maxServices) sizes.maxServices = o.maxServices;
      if (o.maxReals) sizes.maxReals = o.maxReals;
      if (o.maxConns) sizes.maxConns = o.maxConns;
      if (o.maxPersist) sizes.maxPersist = o.maxPersist;
      if (o.maxFrags) sizes.maxFrags = o.maxFrags;
      const attachOpts = {
        ...stateOptions(o), mode: o.mode, preset: o.preset, sizes, force: o.force ?? false, multiprog: o.multiprog ?? false,
        knobs: { ipv6: o.ipv6, tun: o.tun, icmp: o.icmp, frag: o.frag },
      };
      let d: Director;
      if (file) {
        try {
          // All or nothing (Director.attachWith): a file that cannot be applied leaves the
          // interface as it was, not attached with no services.
          const { director, result } = await Director.attachWith(iface, (running) => desiredConfig(file, running), attachOpts);
          d = director;
          warnUnresolved(result);
          console.log(attachedLine(d, iface));
          console.log(result.changes.length ? result.text.trimEnd() : 'configuration already applied');
        } catch (e) {
          console.error(`lvs-xdp: ${iface} not attached: the configuration could not be applied`);
          throw e;
        }
      } else {
        d = await Director.attach(iface, attachOpts);
        console.log(attachedLine(d, iface));
      }
      try {
        if (o.announce) announceVips(d, iface);
        warnNatUnattached(d);
        const ignored = Object.keys(sizes).filter((k) => sizes[k as keyof DirectorSizes] !== d.sizes[k as keyof DirectorSizes]);
        if (ignored.length > 0) {
          const flag = (k: string): string => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
          const what = ignored.map((k) => `${flag(k)} ${sizes[k as keyof DirectorSizes]} ignored (it has ${d.sizes[k as keyof DirectorSizes]})`);
          console.error(`lvs-xdp: warning: the director was already loaded: ${what.join(', ')}; sizes are set by the first attach (detach every interface to change them)`);
        }
      } finally {
        d.close();
      }
    });
}

export function detachCommand(): Command {
  return withStateOptions(new Command('detach'))
    .description('detach from an interface; detaching the last one removes every pinned object and the snapshot')
    .argument('[iface]', 'interface (default: all)')
    .action(async (iface: string | undefined, o: StateOpts) => {
      const opts = stateOptions(o);
      let d: Director;
      try {
        d = Director.open(opts);
      } catch (e) {
        // A state that cannot be opened (corrupt snapshot, a pin removed by hand, or pins without
        // a snapshot) must not block the way out: release the pinned links and remove our pins.
        const broken = e instanceof StateError || (e instanceof NotAttachedError && existsSync(statePaths(opts).pinDir));
        if (!broken) throw e;
        console.error(`lvs-xdp: the pinned state cannot be used (${(e as Error).message}); detaching by the pinned links`);
        const r = await Director.forceDetach(opts, iface);
        console.log(`detached from ${r.detached.join(', ') || 'nothing'}${r.removed ? '; removed the pinned state and snapshot' : ''}`);
        return;
      }
      const r = await d.detach(iface);
      console.log(`detached from ${r.detached.join(', ') || 'nothing'}${r.removed ? '; removed the pinned state and snapshot' : ''}`);
    });
}
