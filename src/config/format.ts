/**
 * formatConfigYaml: a DirectorConfig as a config file, in the shape parseConfigText reads
 * (kebab-case keys, realservers one per line as flow mappings, defaults spelled out where an
 * operator would look for them).
 */
import { Document, isMap, isSeq, visit, type Scalar } from 'yaml';
import type { DirectorConfig, DirectorSettings, FirewallMark, Realserver, VirtualService } from '../model/types.js';
import { formatPorts } from '../model/fwmark.js';

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
  if (s.sync) out.sync = s.sync.map((d) => ({ ...d }));
  if (s.announce) {
    out.announce = { table: s.announce.table, ...(s.announce.protocol !== undefined ? { protocol: s.announce.protocol } : {}), ...(s.announce.birdSocket ? { 'bird-socket': s.announce.birdSocket } : {}) };
  }
  return out;
}

function realserverEntry(r: Realserver, svcPort: number, fwmark: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { address: r.address, weight: r.weight, method: r.method };
  // A firewall-mark service's realserver port is what was given (the service has none); LVS-NAT
  // may map to another port.
  if (fwmark ? r.port : r.port !== svcPort) out.port = r.port;
  if (r.mac !== undefined) out.mac = r.mac;
  if (r.nextHop !== undefined) out['next-hop'] = r.nextHop;
  if (r.ifname !== undefined) out.ifname = r.ifname;
  if (r.upperThreshold) out['upper-threshold'] = r.upperThreshold;
  if (r.lowerThreshold) out['lower-threshold'] = r.lowerThreshold;
  if (r.healthCheck !== undefined) out['health-check'] = r.healthCheck;
  return out;
}

function markEntry(m: FirewallMark): Record<string, unknown> {
  return {
    mark: m.mark,
    match: m.match.map((x) => ({ protocol: x.protocol, address: x.address, ...(x.ports.length ? { ports: formatPorts(x.ports) } : {}) })),
  };
}

function serviceEntry(s: VirtualService): Record<string, unknown> {
  const out: Record<string, unknown> = s.fwmark
    ? { fwmark: s.fwmark, ...(s.vip.includes(':') ? { family: 'ipv6' } : {}), scheduler: s.scheduler }
    : { vip: s.vip, port: s.port, protocol: s.protocol, scheduler: s.scheduler };
  if (s.flags.length > 0) out.flags = [...s.flags];
  if (s.persistence) {
    // IPv6 masks are prefix lengths: write them as numbers.
    const { timeout, netmask } = s.persistence;
    out.persistence = { timeout, netmask: /^\d+$/.test(netmask) ? Number(netmask) : netmask };
  }
  if (s.ops) out.ops = true;
  if (s.tableSize !== undefined) out['table-size'] = s.tableSize;
  if (s.healthCheck !== undefined) out['health-check'] = s.healthCheck;
  out.realservers = s.realservers.map((r) => realserverEntry(r, s.port, !!s.fwmark));
  return out;
}

/** Serialise a config as YAML that parseConfigText reads back to the same config. */
export function formatConfigYaml(config: DirectorConfig): string {
  const file: Record<string, unknown> = {};
  if (config.settings) file.settings = settingsEntry(config.settings);
  if (config.marks?.length) file.marks = config.marks.map(markEntry);
  file.services = config.services.map(serviceEntry);
  const doc = new Document(file);
  // Compact: flags, tunnel, persistence and realservers without health checks on one line each.
  visit(doc, {
    Pair(_, pair) {
      const key = (pair.key as Scalar | null)?.value;
      if ((key === 'flags' || key === 'persistence' || key === 'tunnel' || key === 'timeouts') && (isSeq(pair.value) || isMap(pair.value))) {
        pair.value.flow = true;
      }
      if ((key === 'realservers' || key === 'match') && isSeq(pair.value)) {
        for (const item of pair.value.items) {
          if (isMap(item) && !item.has('health-check')) item.flow = true;
        }
      }
    },
  });
  return doc.toString({ lineWidth: 0 });
}
