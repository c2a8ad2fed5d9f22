/** `lvs-xdp import keepalived FILE [-o OUT]`: keepalived.conf -> lvs-xdp's configuration file. */
import { Command, Option } from 'commander';
import { writeFileSync } from 'node:fs';
import { importKeepalived, formatItem } from '../import/keepalived/index.js';
import { toJson } from './common.js';

interface ImportOpts { output?: string; natAs?: 'dr' | 'tun'; configId?: string; json?: boolean }

export function importCommand(): Command {
  const cmd = new Command('import').description('translate another load balancer\'s configuration into lvs-xdp\'s configuration file');
  cmd.addCommand(new Command('keepalived')
    .description('keepalived.conf (virtual_server blocks and their checks) as an lvs-xdp configuration; prints what could not be carried over and why, with file:line')
    .argument('<file>', 'keepalived.conf (its include files are read too)')
    .option('-o, --output <file>', 'write the configuration here (default: standard output)')
    .addOption(new Option('--nat-as <method>', 'not needed: lb_kind NAT is carried over as method: nat; this carries every lb_kind NAT over as LVS-DR or LVS-Tun instead (the realservers then need the VIP), which also carries NAT firewall-mark services and NAT sorry servers (lvs-xdp has no LVS-NAT for those)').choices(['dr', 'tun']))
    .option('--config-id <id>', 'keepalived\'s -i: which @ID conditional lines apply (default: the host name)')
    .option('--json', 'print the report (and the configuration, without -o) as JSON')
    .action((file: string, o: ImportOpts) => {
      const r = importKeepalived(file, { ...(o.natAs ? { natAs: o.natAs } : {}), ...(o.configId ? { configId: o.configId } : {}) });
      if (o.output) writeFileSync(o.output, r.text);
      if (o.json) {
        console.log(toJson({ services: r.config.services.length, virtualServers: r.virtualServers, items: r.items, files: r.files, ...(o.output ? { output: o.output } : { config: r.text }) }));
        return;
      }
      if (!o.output) process.stdout.write(r.text);
      for (const i of r.items) console.error(formatItem(i));
      const dropped = r.items.filter((i) => i.kind === 'dropped').length;
      console.error(`imported ${r.config.services.length} service(s) from ${r.virtualServers} virtual_server block(s) in ${r.files.length} file(s); ${dropped} item(s) not carried over, ${r.items.length - dropped} changed${r.virtualServers === 0 ? '; no virtual_server: the service list is empty' : ''}${o.output ? `; written to ${o.output}` : ''}`);
    }));
  return cmd;
}
