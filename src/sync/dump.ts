/**
 * The whole connection table as sync entries (pure): what `lvs-xdp sync flush` sends before a
 * planned switchover, so that the peer holds every live connection and persistence template
 * whatever the data plane reported or did not report yet (idle entries, entries older than the
 * peer's start). IPVS has no such message: these are ordinary version 1 entries, built by the
 * same functions as the data plane's events (src/sync/events.ts), so an IPVS backup takes them
 * as it takes a master's.
 *
 * Each connection carries the time it has left (`expire`, at least 1 s) as its timeout, so that
 * the peer's copy ends when this director's would; templates carry the persistence timeout.
 */
import type { ConnectionInfo } from '../director/types.js';
import { servicesById, type DirectorConfig } from '../model/types.js';
import { formatAddress, parseAddress, parseNetmask, prefixMask } from '../model/address.js';
import type { ConnStateName } from '../abi/generated.js';
import type { SyncConn } from './proto.js';
import { syncConnOf, templateOf, type SyncEvent } from './events.js';

export interface DumpResult {
  /** Templates first (a backup then finds a connection's template when it inserts it), then connections. */
  conns: SyncConn[];
  templates: number;
  /** Entries that cannot be sent (their realserver is gone, a state IPVS does not sync). */
  skipped: number;
}

/** The client's persistence group: its address masked with the service's netmask. */
export function maskedClient(addr: string, netmask: string): string {
  const p = parseAddress(addr);
  if (!p) return addr;
  const plen = parseNetmask(netmask, p.family);
  if (typeof plen === 'string') return addr;
  const mask = prefixMask(plen);
  return formatAddress({ family: p.family, bytes: p.bytes.map((b, i) => b & mask[i]!) });
}

export function dumpEntries(config: DirectorConfig, entries: readonly ConnectionInfo[]): DumpResult {
  const services = servicesById(config.services);
  const conns: SyncConn[] = [];
  const templates = new Map<string, SyncConn>();
  let skipped = 0;
  for (const e of entries) {
    const svc = e.service ? services.get(e.service) : undefined;
    const rs = svc && e.realserver ? svc.realservers.find((r) => r.address === e.realserver!.address) : undefined;
    if (!svc || !rs || !e.realserver) {
      skipped++;
      continue;
    }
    const family = e.client.address.includes(':') ? 6 : 4;
    const ev: SyncEvent = {
      family, proto: e.protocol === 'tcp' ? 6 : 17,
      caddr: e.client.address, cport: e.client.port, vaddr: e.virtual.address, vport: e.virtual.port,
      daddr: e.realserver.address, dfamily: e.realserver.address.includes(':') ? 6 : 4, rport: e.realserver.port,
      method: rs.method, state: e.state as ConnStateName, fwmark: svc.fwmark ?? 0,
      persistent: svc.persistence !== undefined, allPorts: !svc.fwmark && svc.port === 0,
      pcaddr: svc.persistence ? maskedClient(e.client.address, svc.persistence.netmask) : e.client.address,
      persistTimeout: svc.persistence?.timeout ?? 0,
    };
    const c = syncConnOf(ev, []);
    if (!c) {
      skipped++;
      continue;
    }
    conns.push({ ...c, timeout: Math.max(1, Math.ceil(e.expire)) });
    const t = templateOf(ev);
    if (t) templates.set(`${t.family}/${t.protocol}/${t.caddr}/${t.vaddr}/${t.vport}`, t);
  }
  return { conns: [...templates.values(), ...conns], templates: templates.size, skipped };
}
