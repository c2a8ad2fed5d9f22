/**
 * formatConfigYaml: a DirectorConfig as a config file, in the shape parseConfigText reads
 * (kebab-case keys, realservers one per line as flow mappings, defaults spelled out where an
 * operator would look for them).
 */
import { Document, isMap, isSeq, visit, type Scalar } from 'yaml';
import type { DirectorConfig, DirectorSettings, Realserver, VirtualService } from '../model/types.js';

function settingsEntry(s: DirectorSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (s.tunnel) out.tunnel = { ...s.tunnel };
  if (s.hashSeed !== undefined) out['hash-seed'] = s.hashSeed;
  if (s.timeouts) {
    const t: Record<string, number> = {};
    if (s.timeouts.tcp !== undefined) t.tcp = s.timeouts.tcp;
    if (s.timeouts.tcpFin !== undefined) t['tcp-fin'] = s.timeouts.tcpFin;
    if (s.timeouts.udp !== undefined) t.udp = s.timeouts.udp;
    out.timeouts = t;
  }
  if (s.expireNodestConn !== undefined) out['expire-nodest-conn'] = s.expireNodestConn;
  if (s.expireQuiescentTemplate !== undefined) out['expire-quiescent-template'] = s.expireQuiescentTemplate;
  if (s.announce) out.announce = { ...s.announce };
  return out;
}

function realserverEntry(r: Realserver, svcPort: number): Record<string, unknown> {
  const out: Record<string, unknown> = { address: r.address, weight: r.weight, method: r.method };
  if (r.port !== svcPort) out.port = r.port; // LVS-NAT to another port
  if (r.mac !== undefined) out.mac = r.mac;
  if (r.nextHop !== undefined) out['next-hop'] = r.nextHop;
  if (r.ifname !== undefined) out.ifname = r.ifname;
  if (r.healthCheck !== undefined) out['health-check'] = r.healthCheck;
  return out;
}

function serviceEntry(s: VirtualService): Record<string, unknown> {
  const out: Record<string, unknown> = { vip: s.vip, port: s.port, protocol: s.protocol, scheduler: s.scheduler };
  if (s.flags.length > 0) out.flags = [...s.flags];
  if (s.persistence) {
    // IPv6 masks are prefix lengths: write them as numbers.
    const { timeout, netmask } = s.persistence;
    out.persistence = { timeout, netmask: /^\d+$/.test(netmask) ? Number(netmask) : netmask };
  }
  if (s.ops) out.ops = true;
  if (s.tableSize !== undefined) out['table-size'] = s.tableSize;
  if (s.healthCheck !== undefined) out['health-check'] = s.healthCheck;
  out.realservers = s.realservers.map((r) => realserverEntry(r, s.port));
  return out;
}

/** Serialise a config as YAML that parseConfigText reads back to the same config. */
export function formatConfigYaml(config: DirectorConfig): string {
  const file: Record<string, unknown> = {};
  if (config.settings) file.settings = settingsEntry(config.settings);
  file.services = config.services.map(serviceEntry);
  const doc = new Document(file);
  // Compact: flags, tunnel, persistence and realservers without health checks on one line each.
  visit(doc, {
    Pair(_, pair) {
      const key = (pair.key as Scalar | null)?.value;
      if ((key === 'flags' || key === 'persistence' || key === 'tunnel' || key === 'timeouts') && (isSeq(pair.value) || isMap(pair.value))) {
        pair.value.flow = true;
      }
      if (key === 'realservers' && isSeq(pair.value)) {
        for (const item of pair.value.items) {
          if (isMap(item) && !item.has('health-check')) item.flow = true;
        }
      }
    },
  });
  return doc.toString({ lineWidth: 0 });
}
