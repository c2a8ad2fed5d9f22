/**
 * The data plane's connection sync events (bpf/lvs_sync.h: the ring buffer lvs_sync_events,
 * struct lvs_sync_event) read back and turned into the entries IPVS's master sends
 * (src/sync/proto.ts SyncConn): the connection, and for a persistent service its persistence
 * template as ip_vs_sched_persist makes it (ip_vs_core.c) and ip_vs_sync_conn sends it after
 * the connection it controls.
 *
 * `decodeSyncEvent` / `syncConnsOf` are pure (tested without root); `SyncEventReader` reads the
 * pinned ring of a running director (`lvs-xdp run` calls read() on a timer).
 */
import { BpfMap, RingReader } from '../native/index.js';
import { ABI, STATE_NAMES, type ConnStateName } from '../abi/generated.js';
import { decode, SYNC_EVENT } from '../abi/layout.js';
import { timeoutsByState } from '../dataplane/compile.js';
import { formatAddress } from '../model/address.js';
import { StateError } from '../errors.js';
import type { Director } from '../director/director.js';
import { IP_VS_CONN_F, canonicalAddr, ipvsConnFlags, ipvsStateOf, type SyncConn } from './proto.js';

/** The pinned ring's name (bpf/lvs_maps.h). */
export const SYNC_RING = 'lvs_sync_events';
/** IPVS makes FTP's templates without ports (<caddr, 0, vaddr, 0, daddr, 0>: ip_vs_sched_persist). */
const FTPPORT = 21;
const IPPROTO_IP = 0;

export type SyncMethod = 'dr' | 'tun' | 'nat';
const METHODS: Readonly<Record<number, SyncMethod>> = { [ABI.LVS_FWD_DR]: 'dr', [ABI.LVS_FWD_TUN]: 'tun', [ABI.LVS_FWD_NAT]: 'nat' };

/** One struct lvs_sync_event, decoded. Addresses as text; ports host order. */
export interface SyncEvent {
  family: 4 | 6;
  proto: number;
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  /** The realserver as its slot held it when the event was made. */
  daddr: string;
  dfamily: 4 | 6;
  /** lvs_real.port: 0 = the client's destination port (DR, Tun). */
  rport: number;
  method: SyncMethod | undefined;
  state: ConnStateName | undefined;
  /** The service's firewall mark (0: a port service). */
  fwmark: number;
  persistent: boolean;
  allPorts: boolean;
  /** The client's persistence group: its address masked with the service's netmask. */
  pcaddr: string;
  persistTimeout: number;
}

function addrOf(b: Uint8Array, family: number): string {
  const fam = family === 6 ? 6 : 4;
  return canonicalAddr(formatAddress({ family: fam, bytes: fam === 6 ? b : b.subarray(0, 4) } as never));
}

/** A record of lvs_sync_events as it came out of the ring. */
export function decodeSyncEvent(rec: Uint8Array): SyncEvent {
  if (rec.length < SYNC_EVENT.size) throw new RangeError(`sync event of ${rec.length} bytes, struct lvs_sync_event has ${SYNC_EVENT.size}`);
  const v = decode(SYNC_EVENT, rec);
  const family = v.family === 6 ? 6 : 4;
  const dfamily = v.dfamily === 6 ? 6 : 4;
  const flags = v.flags as number;
  return {
    family, proto: v.proto as number,
    caddr: addrOf(v.caddr as Uint8Array, family), cport: v.cport as number,
    vaddr: addrOf(v.vaddr as Uint8Array, family), vport: v.vport as number,
    daddr: addrOf(v.daddr as Uint8Array, dfamily), dfamily, rport: v.rport as number,
    method: METHODS[v.method as number], state: STATE_NAMES[v.state as number],
    fwmark: v.fwmark as number,
    persistent: (flags & ABI.LVS_SYNC_F_PERSIST) !== 0, allPorts: (flags & ABI.LVS_SYNC_F_ALLPORTS) !== 0,
    pcaddr: addrOf(v.pcaddr as Uint8Array, family), persistTimeout: v.persist_timeout as number,
  };
}

/** A firewall mark as IPVS puts it in a template's vaddr (union nf_inet_addr .ip = htonl(mark)). */
function markAddr(mark: number, family: 4 | 6): string {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint32(0, mark >>> 0);
  return addrOf(b, family);
}

/** The connection's sync entry, or null when IPVS's sync cannot carry it (a state never synced,
 *  a realserver of the other family: one entry has one address family). */
export function syncConnOf(e: SyncEvent, timeouts: readonly number[]): SyncConn | null {
  const st = e.state ? ipvsStateOf(e.state) : null;
  if (!st || !e.method || !e.state || e.dfamily !== e.family) return null;
  return {
    family: e.family, protocol: e.proto, flags: ipvsConnFlags(e.method, e.state), state: st.state,
    cport: e.cport, vport: e.vport, dport: e.rport || e.vport, fwmark: e.fwmark,
    timeout: timeouts[STATE_NAMES.indexOf(e.state)] ?? 0,
    caddr: e.caddr, vaddr: e.vaddr, daddr: e.daddr,
  };
}

/**
 * The persistence template controlling a connection of a persistent service, as IPVS makes it:
 * TEMPLATE, cport 0, the client's address masked with the netmask; a firewall-mark service's has
 * protocol IPPROTO_IP, the mark as vaddr and vport / dport 0; an all-ports service's (and FTP's)
 * vport / dport 0; any other the service's port and the realserver's. Timeout: the persistence
 * timeout. Its flags are the destination's (method, INACTIVE), as ip_vs_bind_dest gives them.
 */
export function templateOf(e: SyncEvent): SyncConn | null {
  if (!e.persistent || !e.method || e.dfamily !== e.family) return null;
  const ports = !e.fwmark && !e.allPorts && e.vport !== FTPPORT;
  return {
    family: e.family, protocol: e.fwmark ? IPPROTO_IP : e.proto,
    flags: IP_VS_CONN_F.TEMPLATE | ipvsConnFlags(e.method, 'SYN_RECV'), state: 0,
    cport: 0, vport: ports ? e.vport : 0, dport: ports ? e.rport || e.vport : 0, fwmark: e.fwmark,
    timeout: e.persistTimeout,
    caddr: e.pcaddr, vaddr: e.fwmark ? markAddr(e.fwmark, e.family) : e.vaddr, daddr: e.daddr,
  };
}

/** A template's identity on a backup (ip_vs_ct_in_get: protocol, caddr, cport, vaddr, vport). */
function templateKey(t: SyncConn): string {
  return `${t.family}/${t.protocol}/${t.caddr}/${t.vaddr}/${t.vport}/${t.daddr}/${t.dport}`;
}

/**
 * One read batch of events as the entries to send, in order: each connection, followed by its
 * template the first time the batch names that template (IPVS syncs the controller after each
 * connection; once per batch is enough for a backup, which keeps the template as long as the
 * connections under it). `timeouts`: idle timeout per lvs-xdp state (lvs_cfg.timeout_s order).
 */
export function syncConnsOf(events: readonly SyncEvent[], timeouts: readonly number[]): SyncConn[] {
  const out: SyncConn[] = [];
  const templates = new Set<string>();
  for (const e of events) {
    const c = syncConnOf(e, timeouts);
    if (!c) continue;
    out.push(c);
    const t = templateOf(e);
    if (t && !templates.has(templateKey(t))) {
      templates.add(templateKey(t));
      out.push(t);
    }
  }
  return out;
}

/** Reads a running director's sync events (its pinned lvs_sync_events ring). */
export class SyncEventReader {
  private constructor(private readonly director: Director, private readonly ring: RingReader) {}

  /** Opens the director's ring; StateError for a director without one (an lvs-xdp before sync). */
  static open(director: Director): SyncEventReader {
    const path = `${director.paths.pinDir}/${SYNC_RING}`;
    let map: BpfMap;
    try {
      map = BpfMap.fromPin(path);
    } catch (e) {
      throw new StateError(`the running director has no sync event ring (${path}): ${e instanceof Error ? e.message : String(e)}`, { hint: 'lvs-xdp upgrade' });
    }
    try {
      return new SyncEventReader(director, new RingReader(map.fd));
    } finally {
      map.close(); // libbpf keeps its own mapping of the ring
    }
  }

  /** The raw events ready now (at most `max`; the rest stay for the next call). */
  readEvents(max = 8192): SyncEvent[] {
    return this.ring.consume(max).map(decodeSyncEvent);
  }

  /** The entries to send for the events ready now (at most `max` events): see syncConnsOf. */
  read(max = 8192): SyncConn[] {
    const events = this.readEvents(max);
    if (!events.length) return [];
    return syncConnsOf(events, timeoutsByState(this.director.config.settings?.timeouts));
  }

  close(): void {
    this.ring.close();
  }
}
