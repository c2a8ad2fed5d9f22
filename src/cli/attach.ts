/** `lvs-xdp attach IFACE [-f FILE]` and `lvs-xdp detach [IFACE]`. */
import { Command, Option } from 'commander';
import { Director } from '../director/director.js';
import { ConfigError } from '../errors.js';
import type { DirectorSizes } from '../dataplane/loader.js';
import { withStateOptions, stateOptions, readConfigFile, type StateOpts } from './common.js';

function count(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new ConfigError(`${JSON.stringify(v)} is not a positive integer`, { field: `--${name}` });
    return Number(v);
  };
}

interface AttachOpts extends StateOpts {
  file?: string; mode: 'auto' | 'native' | 'generic'; preset: 'default' | 'small'; force?: boolean;
  maxServices?: number; maxReals?: number; maxConns?: number; maxPersist?: number; maxFrags?: number;
  ipv6: boolean; tun: boolean; icmp: boolean; frag: boolean;
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
    .option('--force', 'replace a foreign XDP program already on the interface')
    .action(async (iface: string, o: AttachOpts) => {
      // Read the file first: a bad file attaches nothing.
      const config = o.file === undefined ? undefined : readConfigFile(o.file);
      const sizes: Partial<DirectorSizes> = {};
      if (o.maxServices) sizes.maxServices = o.maxServices;
      if (o.maxReals) sizes.maxReals = o.maxReals;
      if (o.maxConns) sizes.maxConns = o.maxConns;
      if (o.maxPersist) sizes.maxPersist = o.maxPersist;
      if (o.maxFrags) sizes.maxFrags = o.maxFrags;
      const d = await Director.attach(iface, {
        ...stateOptions(o), mode: o.mode, preset: o.preset, sizes, force: o.force ?? false,
        knobs: { ipv6: o.ipv6, tun: o.tun, icmp: o.icmp, frag: o.frag },
      });
      try {
        const st = d.status().interfaces.find((i) => i.name === iface);
        console.log(`attached to ${iface} (${st?.mode ?? 'unknown'} mode)`);
        if (config) {
          const r = await d.apply(config);
          console.log(r.changes.length ? r.text.trimEnd() : 'configuration already applied');
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
      const d = Director.open(stateOptions(o));
      const r = await d.detach(iface);
      console.log(`detached from ${r.detached.join(', ') || 'nothing'}${r.removed ? '; removed the pinned state and snapshot' : ''}`);
    });
}
