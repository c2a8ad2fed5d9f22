/**
 * The reference model of the data plane's decision for one frame:
 *   (frame, configuration, state, time) -> (XDP action, output bytes, counters, stats, map writes)
 * written from the README's "Data plane" sections (packet path, fragments, knobs, counters).
 * It reads `state` and never changes it: the caller applies `outcome.writes` (./types.ts).
 *
 * Time is bpf_ktime_get_ns(): every age is a u64 difference, so a timestamp in the future reads
 * as very old.
 */
import { ABI } from '../../src/abi/generated.js';
import { encode, SYNC_EVENT } from '../../src/abi/layout.js';
import { XdpAction } from '../../src/native/constants.js';
import { flowHash } from '../../src/dataplane/flowhash.js';
import { parseFrame, type Packet } from './parse.js';
import { LiveCounts, lcPick } from './lc.js';
import { buildDr, buildTooBig, buildTun, tunnelOuterLen } from './emit.js';
import { buildNatForward, buildNatReply, hopLimit } from './nat.js';
import { flowKeyHex, fragKeyHex, persistKeyHex, serviceKeyHex, type FlowTuple } from './keys.js';
import { WAYS, synRecvBucket, synRecvOf, synRecvValid, synRecvVictim, type SynRecv } from './synrecv.js';
import {
  PROTO, type CounterName, type DynamicState, type MarkEntry, type Outcome, type Real, type Service,
  type StaticConfig, type StatsDelta, type Write,
} from './types.js';

const NS = 1_000_000_000n;
export const CONN_REFRESH_NS = NS; // a connection's timestamp is rewritten at most once a second
export const FRAG_TIMEOUT_NS = 30n * NS;
export const STRAY_PROMOTE_NS = NS; // a stray seen again more than this later is a flow
export const STRAY_TIMEOUT_NS = 10n * NS; // a stray not promoted by then is forgotten
const TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_RST = 0x04, TCP_ACK = 0x10;
const CS = { NONE: 0, SYN_RECV: 1, ESTABLISHED: 2, FIN_WAIT: 3, CLOSE: 4, UDP: 5, MAX: 6 } as const;
const MIN_IPV4_MTU = 68;

const ZERO_REAL: Real = {
  addr: new Uint8Array(16), mac: new Uint8Array(6), smac: new Uint8Array(6), family: 0, method: 0,
  flags: 0, gen: 0, ifindex: 0, svcId: 0,
};

/** Whether addr lies in prefix/plen (16-byte network-order addresses). */
function inPrefix(prefix: Uint8Array, plen: number, addr: Uint8Array): boolean {
  for (let i = 0; i < plen; i++) {
    const bit = 0x80 >> (i & 7);
    if (((prefix[i >> 3] ?? 0) & bit) !== ((addr[i >> 3] ?? 0) & bit)) return false;
  }
  return true;
}

export function age(now: bigint, then: bigint): bigint {
  return BigInt.asUintN(64, now - then);
}

/** TCP state from the client's packets (README step 4). */
export function tcpNextState(state: number, flags: number): number {
  if (flags & TCP_RST) return CS.CLOSE;
  if (flags & TCP_FIN) return CS.FIN_WAIT;
  if (flags & TCP_SYN) return state === CS.NONE ? CS.SYN_RECV : state;
  return state === CS.NONE || state === CS.SYN_RECV ? CS.ESTABLISHED : state;
}

/** forward: the client side to realserver slot `forward`; reply: an LVS-NAT reply (or ICMP error
 *  from the realserver's side) of slot `reply`. */
type Decision = { forward: number } | { reply: number } | { action: number };

/**
 * Only frames for the director: the egress MAC of the ingress interface's entry for the frame's
 * destination MAC, or undefined when the interface does not accept it. A group MAC (broadcast,
 * multicast) is never accepted, whatever the map holds.
 */
export function acceptedEgress(cfg: StaticConfig, frame: Uint8Array): Uint8Array | undefined {
  if (frame.length < 6 || (frame[0]! & 1)) return undefined;
  return cfg.accepted.get(`${cfg.ingressIfindex}/${Buffer.from(frame.subarray(0, 6)).toString('hex')}`);
}

/** One packet's bookkeeping: counters, stats and map writes, in the order they happen. */
class Trace {
  counters: CounterName[] = [];
  writes: Write[] = [];
  svcStats = new Map<number, StatsDelta>();
  realStats = new Map<number, StatsDelta>();
  sync: Buffer[] = [];
  path: string[] = [];

  constructor(private readonly cfg: StaticConfig) {}

  count(c: CounterName): void { this.counters.push(c); }
  note(s: string): void { this.path.push(s); }
  write(w: Write): void { this.writes.push(w); }

  account(svcId: number, real: number, bytes: number, newConn: boolean): void {
    const add = (m: Map<number, StatsDelta>, i: number) => {
      const s = m.get(i) ?? { packets: 0, bytes: 0, conns: 0 };
      s.packets += 1;
      s.bytes += bytes;
      if (newConn) s.conns += 1;
      m.set(i, s);
    };
    if (svcId < this.cfg.limits.services) add(this.svcStats, svcId);
    if (real < this.cfg.limits.reals) add(this.realStats, real);
  }

  /** LVS-NAT replies: IPVS OutPkts / OutBytes. */
  accountOut(svcId: number, real: number, bytes: number): void {
    const add = (m: Map<number, StatsDelta>, i: number) => {
      const s = m.get(i) ?? { packets: 0, bytes: 0, conns: 0 };
      s.outPackets = (s.outPackets ?? 0) + 1;
      s.outBytes = (s.outBytes ?? 0) + bytes;
      m.set(i, s);
    };
    if (svcId < this.cfg.limits.services) add(this.svcStats, svcId);
    if (real < this.cfg.limits.reals) add(this.realStats, real);
  }

  pass(reason: CounterName): Decision { this.count(reason); return { action: XdpAction.PASS }; }
  drop(reason: CounterName): Decision { this.count(reason); return { action: XdpAction.DROP }; }
}

class Director {
  private readonly lc: LiveCounts;

  constructor(
    private readonly cfg: StaticConfig,
    private readonly state: DynamicState,
    private readonly now: bigint,
    private readonly t: Trace,
  ) {
    this.lc = new LiveCounts(cfg, state, (w) => t.write(w));
  }

  /** The realserver slot at idx, as a lookup sees it (undefined past the array's end). */
  slot(idx: number): Real | undefined {
    if (idx >= this.cfg.limits.reals) return undefined;
    return this.cfg.reals.get(idx) ?? ZERO_REAL;
  }

  /** A realserver that state (connection, template, fragment pin) may still point at: in use and
   *  the same assignment of the slot (a deleted or reused slot keeps none of its old flows). */
  stillServing(idx: number, gen: number): Real | undefined {
    const r = this.slot(idx);
    return r && (r.flags & ABI.LVS_REAL_F_ACTIVE) && r.gen === gen ? r : undefined;
  }

  /** The entry's slot, in use or deleted with its entries kept (LVS_REAL_F_GONE), same
   *  generation: undefined when it was emptied or reused. */
  entrySlot(idx: number, gen: number): Real | undefined {
    const r = this.slot(idx);
    return r && r.gen === gen && (r.flags & (ABI.LVS_REAL_F_ACTIVE | ABI.LVS_REAL_F_GONE)) ? r : undefined;
  }

  /** The (proto, VIP, port) service, else the all-ports one. */
  portService(f: FlowTuple): Service | undefined {
    const k = { addr: f.daddr, proto: f.proto, family: f.family };
    return this.cfg.services.get(serviceKeyHex({ ...k, port: f.dport })) ?? this.cfg.services.get(serviceKeyHex({ ...k, port: 0 }));
  }

  /** The firewall mark of a flow (0: none): of the lvs_fwmarks entries whose prefix holds the
   *  destination, the longest; its first range (of at most LVS_FWMARK_RANGES) holding the port. */
  mark(f: FlowTuple): number {
    let best: MarkEntry | undefined;
    for (const e of this.cfg.marks ?? []) {
      if (e.family !== f.family || e.proto !== f.proto || !inPrefix(e.prefix, e.plen, f.daddr)) continue;
      if (!best || e.plen > best.plen) best = e;
    }
    if (!best) return 0;
    const n = Math.min(best.count, ABI.LVS_FWMARK_RANGES, best.ranges.length);
    return best.ranges.slice(0, n).find((r) => r.from <= f.dport && f.dport <= r.to)?.mark ?? 0;
  }

  /** The service of a flow: a mark's service first (IPVS's order) when marks are on and the port
   *  service is absent or flagged LVS_SVC_F_MARKED, else the port service. */
  service(f: FlowTuple): Service | undefined {
    const port = this.portService(f);
    if (!(this.cfg.settings.flags & ABI.LVS_CFG_F_FWMARK)) return port;
    if (port && !(port.flags & ABI.LVS_SVC_F_MARKED)) return port;
    const mark = this.mark(f);
    if (!mark) return port;
    const addr = new Uint8Array(16);
    new DataView(addr.buffer).setUint32(0, mark >>> 0);
    const m = this.cfg.services.get(serviceKeyHex({ addr, port: 0, proto: ABI.LVS_PROTO_FWMARK, family: f.family }));
    if (m) this.t.note(`fwmark ${mark}`);
    return m ?? port;
  }

  /** LVS-NAT: the client entry `value` of flow f on slot r was written; its reply entry (the
   *  reply's own tuple, dir LVS_DIR_REPLY) gets the same value. */
  mirror(f: FlowTuple, r: Real, value: { lastSeen: bigint; real: number; gen: number; state: number }): void {
    if (r.method !== ABI.LVS_FWD_NAT) return;
    const key = flowKeyHex({ saddr: r.addr, daddr: f.saddr, sport: r.port || f.dport, dport: f.sport, proto: f.proto, family: f.family, dir: ABI.LVS_DIR_REPLY });
    this.t.write({ map: 'conns', key, value: { ...value } });
  }

  /** The NAT flow whose reply tuple is rt: its reply entry holds (slot unchanged and NAT, not
   *  idle beyond its state's timeout); `gone`: the realserver was deleted with its flows kept. */
  natFind(rt: FlowTuple): { key: string; c: { lastSeen: bigint; real: number; gen: number; state: number }; gone: boolean } | undefined {
    const key = flowKeyHex({ ...rt, dir: ABI.LVS_DIR_REPLY });
    const c = this.state.conns.get(key);
    if (!c) return undefined;
    const r = this.slot(c.real);
    if (!r || r.gen !== c.gen || r.method !== ABI.LVS_FWD_NAT || !(r.flags & (ABI.LVS_REAL_F_ACTIVE | ABI.LVS_REAL_F_GONE))) return undefined;
    const timeout = this.timeoutNs(c.state);
    if (timeout !== 0n && age(this.now, c.lastSeen) > timeout) return undefined;
    return { key, c, gone: !(r.flags & ABI.LVS_REAL_F_ACTIVE) };
  }

  /** A TCP / UDP packet to no service on a director with LVS-NAT: a realserver's reply? Found
   *  by its tuple; the destination MAC is checked before anything is written. A reply refreshes
   *  its entry and the client's (at most once a second). */
  natReply(frame: Uint8Array, p: Packet, f: FlowTuple): Decision {
    const found = this.natFind(f);
    if (!found) return this.t.pass('PASS_NOT_VIP');
    if (!acceptedEgress(this.cfg, frame)) return this.t.pass('PASS_NOT_OUR_MAC');
    if (found.gone) return this.t.drop('DROP_REAL_GONE');
    const { c, key } = found;
    const r = this.stillServing(c.real, c.gen);
    if (!r) return this.t.drop('DROP_BAD_REAL');
    if (age(this.now, c.lastSeen) > CONN_REFRESH_NS) {
      this.t.write({ map: 'conns', key, value: { ...c, lastSeen: this.now } });
      const fk = flowKeyHex({ saddr: f.daddr, daddr: r.vip ?? new Uint8Array(16), sport: f.dport, dport: r.vport || f.sport, proto: f.proto, family: f.family });
      const fc = this.state.conns.get(fk);
      if (fc && fc.real === c.real && fc.gen === c.gen) this.t.write({ map: 'conns', key: fk, value: { ...fc, lastSeen: this.now } });
    }
    if (this.cfg.knobs.frag && p.frag === 'first') {
      this.t.write({ map: 'frags', key: fragKeyHex(p.saddr, p.daddr, p.fragId, p.proto, p.family), value: { lastSeen: this.now, real: c.real, gen: c.gen } });
      this.t.count('FRAG_FIRST');
    }
    this.t.note('nat reply');
    return { reply: c.real };
  }

  /** The all-ports service a flow falls to when its port's entry is a tombstone. */
  allPorts(f: FlowTuple): Service | undefined {
    if (f.dport === 0) return undefined;
    return this.cfg.services.get(serviceKeyHex({ addr: f.daddr, proto: f.proto, family: f.family, port: 0 }));
  }

  /** The entry's idle timeout by state (0: never expires). */
  timeoutNs(state: number): bigint {
    return state < CS.MAX ? BigInt(this.cfg.settings.timeouts[state] ?? 0) * NS : 0n;
  }

  /** A connection of the client's group was used now in state st: its template stays valid at
   *  least as long as the connection. */
  persistTouch(svc: Service, p: Packet, st: number): void {
    const pkey = persistKeyHex(p.saddr, svc.persistMask, svc.id, p.family);
    const tpl = this.state.persist.get(pkey);
    const persistNs = BigInt(svc.persistTimeout) * NS;
    const connNs = this.timeoutNs(st);
    const from = BigInt.asUintN(64, connNs > persistNs ? this.now + (connNs - persistNs) : this.now);
    if (tpl && tpl.lastSeen < from) this.t.write({ map: 'persist', key: pkey, value: { ...tpl, lastSeen: from } });
  }

  /** A SYN without ACK on a FIN_WAIT / CLOSE entry: the client reuses its port. */
  synOnClosed(p: Packet, state: number): boolean {
    return p.proto === PROTO.TCP && (p.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN && (state === CS.FIN_WAIT || state === CS.CLOSE);
  }

  /** A deleted service's flow whose entry still holds: not expired, not reused, slot unchanged. */
  held(p: Packet, f: FlowTuple): boolean {
    const c = this.state.conns.get(flowKeyHex(f));
    if (c && this.entrySlot(c.real, c.gen) && !this.synOnClosed(p, c.state)) {
      const timeout = this.timeoutNs(c.state);
      if (timeout === 0n || age(this.now, c.lastSeen) <= timeout) return true;
    }
    // or a live SYN_RECV connection of the flow
    return this.synRecvOfFlow(flowKeyHex(f)) !== undefined;
  }

  // ---- SYN_RECV connections of DR / Tun flows (lvs_synrecv): 4-way buckets by a keyed hash ----

  /** The slots of a flow's bucket, way 0 first. */
  synRecvWays(key: string): number[] {
    const b = synRecvBucket(key, this.cfg.limits.synRecv, this.cfg.synrecvKey);
    return Array.from({ length: WAYS }, (_, i) => b + i);
  }

  /** The realserver slot of a live SYN_RECV slot: check word holds, younger than the SYN_RECV
   *  timeout (0: never expires), realserver slot unchanged (in use or gone). */
  synRecvLive(e: SynRecv | undefined): Real | undefined {
    if (!e || !synRecvValid(e)) return undefined;
    return this.synRecvFresh(e);
  }

  /** synRecvLive without the check word (the order in which a new SYN takes ways). */
  synRecvFresh(e: SynRecv): Real | undefined {
    const timeout = this.timeoutNs(CS.SYN_RECV);
    if (timeout !== 0n && age(this.now, e.lastSeen) > timeout) return undefined;
    return this.entrySlot(e.real, e.gen);
  }

  /** The flow's first way (lowest) that holds it live, if any. */
  synRecvOfFlow(key: string): { slot: number; e: SynRecv; r: Real } | undefined {
    for (const slot of this.synRecvWays(key)) {
      const e = this.state.synrecv.get(slot);
      if (!e || e.key !== key) continue;
      const r = this.synRecvLive(e);
      if (r) return { slot, e, r };
    }
    return undefined;
  }

  /** A template whose persistence timeout counts from lastSeen is valid until lastSeen + timeout
   *  (a lastSeen in the future is valid); its realserver in use, and not quiesced when the
   *  settings expire quiescent templates. */
  templateReal(svc: Service, tpl: { lastSeen: bigint; real: number; gen: number } | undefined): Real | undefined {
    if (!tpl) return undefined;
    const limit = BigInt(svc.persistTimeout) * NS;
    if (!(tpl.lastSeen >= this.now || this.now - tpl.lastSeen <= limit)) return undefined;
    const r = this.stillServing(tpl.real, tpl.gen);
    if (r && (r.flags & ABI.LVS_REAL_F_QUIESCED) && (this.cfg.settings.flags & ABI.LVS_CFG_F_EXPIRE_QUIESCENT)) return undefined;
    return r;
  }

  /** The service's lookup table at the flow's hash (or the rr cursor): a realserver index, or the
   *  drop reason. */
  fromTable(svc: Service, f: FlowTuple): number | CounterName {
    if (svc.flags & ABI.LVS_SVC_F_GONE) return 'DROP_SERVICE_GONE';
    if (svc.tableSize === 0) return 'DROP_NO_REAL';
    const tableOf = () => (svc.tableSlot < this.cfg.limits.tableSlots ? this.cfg.tables.get(svc.tableSlot) : undefined);
    if (svc.flags & ABI.LVS_SVC_F_LC) {
      // least-connection family: the table holds candidates, compared by live counts
      const table = tableOf();
      if (!table) return 'DROP_NO_TABLE';
      const kind = (svc.flags >> ABI.LVS_SVC_LC_SHIFT) & ABI.LVS_SVC_LC_MASK;
      return lcPick(kind, table, svc.tableSize, flowHash(f, 0x1f, this.cfg.settings.seed), this.lc, (s) => this.t.note(s));
    }
    let pos: number;
    if (svc.flags & ABI.LVS_SVC_F_ROTATE) {
      if (svc.id >= this.cfg.limits.services) return 'DROP_NO_TABLE';
      const cursor = this.state.cursors.get(svc.id) ?? 0;
      pos = cursor >= svc.tableSize ? 0 : cursor;
      this.t.write({ map: 'cursor', id: svc.id, value: pos + 1 });
      this.t.note(`rr cursor ${cursor} -> slot ${pos}`);
    } else {
      pos = flowHash(f, svc.hashFields, this.cfg.settings.seed) % svc.tableSize;
      this.t.note(`hash slot ${pos}/${svc.tableSize}`);
    }
    const table = tableOf();
    if (!table || pos >= table.length) return 'DROP_NO_TABLE';
    const real = table[pos]!;
    if (real === ABI.LVS_REAL_NONE) return 'DROP_NO_REAL';
    if ((svc.flags & ABI.LVS_SVC_F_THRESH) && this.lc.overloaded(real)) {
      // over its upper threshold: rr / wrr take the next slots (up to LVS_LC_WALK - 1 more), the
      // hashing schedulers none
      if (!(svc.flags & ABI.LVS_SVC_F_ROTATE)) return 'DROP_OVERLOADED';
      for (let k = 1; k < ABI.LVS_LC_WALK; k++) {
        let s = pos + k;
        if (s >= svc.tableSize) s -= svc.tableSize;
        if (s >= svc.tableSize || s >= table.length || table[s] === ABI.LVS_REAL_NONE) break;
        if (!this.lc.overloaded(table[s]!)) {
          this.t.write({ map: 'cursor', id: svc.id, value: (s + 1) >>> 0 });
          this.t.note(`rr past overloaded -> slot ${s}`);
          return table[s]!;
        }
      }
      return 'DROP_OVERLOADED';
    }
    return real;
  }

  /** A new connection: the client's persistence template first (persistent services), else the
   *  table; a new template records the table's choice. */
  forNewConnection(svc: Service, p: Packet, f: FlowTuple): number | CounterName {
    if (!(svc.flags & ABI.LVS_SVC_F_PERSIST)) return this.fromTable(svc, f);
    const key = persistKeyHex(p.saddr, svc.persistMask, svc.id, p.family);
    const tpl = this.state.persist.get(key);
    if (tpl && this.templateReal(svc, tpl)) {
      // never shortens what a connection under it set
      if (tpl.lastSeen < this.now) this.t.write({ map: 'persist', key, value: { lastSeen: this.now, real: tpl.real, gen: tpl.gen } });
      this.t.count('PERSIST_HIT');
      return tpl.real;
    }
    const pick = this.fromTable(svc, f);
    if (typeof pick !== 'number') return pick;
    const r = this.slot(pick);
    if (!r) return pick; // past the array: the caller drops it
    this.t.write({ map: 'persist', key, value: { lastSeen: this.now, real: pick, gen: r.gen } });
    this.t.count('PERSIST_NEW');
    return pick;
  }

  /**
   * Connection sync (README "Connection sync events"): with LVS_CFG_F_SYNC, an entry written by a
   * client packet (state st -> nst; st === nst: refreshed, last refreshed at `then`) is reported
   * when it moves into ESTABLISHED, FIN_WAIT, CLOSE or UDP, or, ESTABLISHED / UDP and unchanged,
   * when a multiple of the refresh period lies between `then` and now. The record as the ring
   * holds it. The fuzzer drains the ring after every frame (a frame reports at most one entry), so
   * the model never sees it full: SYNC_LOST is the packet tests' (test/packet/sync-events.test.ts).
   */
  syncConn(svc: Service, p: Packet, r: Real, st: number, nst: number, then: bigint): void {
    if (!(this.cfg.settings.flags & ABI.LVS_CFG_F_SYNC)) return;
    let wanted: boolean;
    if (nst !== st) wanted = nst === CS.ESTABLISHED || nst === CS.FIN_WAIT || nst === CS.CLOSE || nst === CS.UDP;
    else if (nst !== CS.ESTABLISHED && nst !== CS.UDP) wanted = false;
    else {
      const period = BigInt(this.cfg.settings.syncRefreshS ?? 0) * NS;
      wanted = period !== 0n && this.now / period !== then / period;
    }
    if (!wanted) return;
    const persist = (svc.flags & ABI.LVS_SVC_F_PERSIST) !== 0;
    this.t.sync.push(encode(SYNC_EVENT, {
      caddr: p.saddr, vaddr: p.daddr, daddr: r.addr, pcaddr: p.saddr.map((b, i) => b & svc.persistMask[i]!),
      cport: p.sport, vport: p.dport, rport: r.port ?? 0, proto: p.proto, family: p.family, dfamily: r.family & 0xff,
      method: r.method & 0xff, state: nst,
      flags: (persist ? ABI.LVS_SYNC_F_PERSIST : 0) | (svc.flags & ABI.LVS_SVC_F_ALLPORTS ? ABI.LVS_SYNC_F_ALLPORTS : 0),
      fwmark: svc.fwmark ?? 0, persist_timeout: persist ? svc.persistTimeout : 0,
    }));
    this.t.count('SYNC_EVENT');
    this.t.note(`sync event ${st}->${nst}`);
  }

  /** A stray's realserver: a valid template's (not written), else the table's. */
  forStray(svc: Service, p: Packet, f: FlowTuple): number | CounterName {
    if (svc.flags & ABI.LVS_SVC_F_PERSIST) {
      const tpl = this.state.persist.get(persistKeyHex(p.saddr, svc.persistMask, svc.id, p.family));
      if (tpl && this.templateReal(svc, tpl)) return tpl.real;
    }
    return this.fromTable(svc, f);
  }

  /** TCP without SYN and no usable entry: forwarded as a stray, promoted once it shows it is a
   *  flow. Returns the realserver (and whether this packet made a connection) or the drop reason. */
  stray(svc: Service, p: Packet, f: FlowTuple, key: string): { real: number; promoted: boolean } | CounterName {
    const s = this.state.strays.get(key);
    const sr = s ? this.stillServing(s.real, s.gen) : undefined;
    if (s && age(this.now, s.lastSeen) <= STRAY_TIMEOUT_NS && sr) {
      if ((p.tcpFlags & (TCP_FIN | TCP_RST)) || age(this.now, s.lastSeen) <= STRAY_PROMOTE_NS) {
        this.t.count('CONN_STRAY');
        this.t.note('stray again');
        return { real: s.real, promoted: false };
      }
      this.t.write({ map: 'conns', key, value: { lastSeen: this.now, real: s.real, gen: s.gen, state: CS.ESTABLISHED } });
      this.mirror(f, sr, { lastSeen: this.now, real: s.real, gen: s.gen, state: CS.ESTABLISHED });
      this.t.write({ map: 'strays', key, value: null });
      this.lc.move(s.real, CS.NONE, CS.ESTABLISHED);
      this.t.count('CONN_PROMOTED');
      this.syncConn(svc, p, sr, CS.NONE, CS.ESTABLISHED, 0n);
      this.t.note('stray promoted');
      return { real: s.real, promoted: true };
    }
    // an expired stray whose realserver is still the one it was recorded for: it ends here
    if (s && this.stillServing(s.real, s.gen)) this.lc.unbind(s.real, CS.NONE);
    const pick = this.forStray(svc, p, f);
    if (typeof pick !== 'number') return pick;
    const r = this.slot(pick);
    if (!r) return { real: pick, promoted: false }; // past the array: dropped below
    this.t.write({ map: 'strays', key, value: { lastSeen: this.now, real: pick, gen: r.gen, state: CS.NONE } });
    this.lc.bind(pick, CS.NONE);
    this.t.count('CONN_STRAY');
    this.t.note('stray new');
    return { real: pick, promoted: false };
  }

  /** Step 2-4 for TCP/UDP (whole packets and first fragments). The destination MAC is checked
   *  once the packet is known to be for a service, before any state. */
  flow(frame: Uint8Array, p: Packet): Decision {
    const f: FlowTuple = { saddr: p.saddr, daddr: p.daddr, sport: p.sport, dport: p.dport, proto: p.proto, family: p.family };
    let svc = this.service(f);
    if (!svc) return this.cfg.settings.flags & ABI.LVS_CFG_F_NAT ? this.natReply(frame, p, f) : this.t.pass('PASS_NOT_VIP');
    if (!acceptedEgress(this.cfg, frame)) return this.t.pass('PASS_NOT_OUR_MAC');
    if (svc.flags & ABI.LVS_SVC_F_GONE) {
      // a deleted service: its connections wait, other flows are not its
      if (this.held(p, f)) return this.t.drop('DROP_SERVICE_GONE');
      // a mark's tombstone: the port service it covered, if any
      const port = this.portService(f);
      svc = svc === port ? this.allPorts(f) : port;
      if (!svc || (svc.flags & ABI.LVS_SVC_F_GONE)) return this.t.pass('PASS_NOT_VIP');
      this.t.note('tombstone: all-ports service');
    }
    this.t.note(`service id ${svc.id}`);
    const tcp = p.proto === PROTO.TCP;
    let real: number | undefined;
    let scheduled = false;

    if (svc.flags & ABI.LVS_SVC_F_OPS) {
      const pick = this.fromTable(svc, f);
      if (typeof pick !== 'number') return this.t.drop(pick);
      this.t.count('OPS_SCHEDULED');
      real = pick;
      scheduled = true;
    } else {
      const key = flowKeyHex(f);
      const c = this.state.conns.get(key);
      let stale = false;
      if (c) {
        const timeout = this.timeoutNs(c.state);
        const idle = age(this.now, c.lastSeen);
        const r = this.entrySlot(c.real, c.gen);
        if (!r) {
          this.t.count('CONN_REAL_GONE');
          stale = true;
        } else if (this.synOnClosed(p, c.state)) {
          this.t.count('CONN_REUSED');
          this.lc.unbind(c.real, c.state);
          stale = true;
        } else if (timeout !== 0n && idle > timeout) {
          this.t.count('CONN_EXPIRED');
          this.lc.unbind(c.real, c.state);
          stale = true;
        } else if (!(r.flags & ABI.LVS_REAL_F_ACTIVE)) {
          // deleted realserver, entry kept for it: neither refreshed nor moved on
          return this.t.drop('DROP_REAL_GONE');
        } else {
          const next = tcp ? tcpNextState(c.state, p.tcpFlags) : CS.UDP;
          if (next !== c.state) this.lc.move(c.real, c.state, next);
          const refresh = next !== c.state || idle > CONN_REFRESH_NS;
          if (refresh) {
            this.t.write({ map: 'conns', key, value: { lastSeen: this.now, real: c.real, gen: c.gen, state: next } });
            this.mirror(f, r, { lastSeen: this.now, real: c.real, gen: c.gen, state: next });
            if (svc.flags & ABI.LVS_SVC_F_PERSIST) this.persistTouch(svc, p, next);
            this.syncConn(svc, p, r, c.state, next, c.lastSeen);
          }
          this.t.count('CONN_HIT');
          this.t.note(`conn hit state ${c.state}->${next}`);
          real = c.real;
        }
      }
      if (real === undefined && tcp) {
        // a SYN_RECV connection: a retransmitted SYN keeps its realserver, any other packet
        // enters it in lvs_conns
        const sr = this.synRecvOfFlow(key);
        if (sr && !(sr.r.flags & ABI.LVS_REAL_F_ACTIVE)) return this.t.drop('DROP_REAL_GONE');
        if (sr) {
          if (stale) this.t.write({ map: 'conns', key, value: null });
          const next = tcpNextState(CS.SYN_RECV, p.tcpFlags);
          const e = sr.e;
          if (next === CS.SYN_RECV) {
            this.t.write({ map: 'synrecv', slot: sr.slot, value: synRecvOf({ key, lastSeen: this.now, real: e.real, gen: e.gen, svcId: e.svcId }) });
            if (svc.flags & ABI.LVS_SVC_F_PERSIST) this.persistTouch(svc, p, CS.SYN_RECV);
            this.t.count('CONN_HIT');
            this.t.note('syn_recv: SYN again');
          } else {
            this.t.write({ map: 'conns', key, value: { lastSeen: this.now, real: e.real, gen: e.gen, state: next } });
            this.t.write({ map: 'synrecv', slot: sr.slot, value: null });
            this.lc.move(e.real, CS.SYN_RECV, next);
            if (svc.flags & ABI.LVS_SVC_F_PERSIST) this.persistTouch(svc, p, next);
            this.t.count('CONN_HIT');
            this.t.count('CONN_SYNRECV_ENTERED');
            this.syncConn(svc, p, sr.r, CS.SYN_RECV, next, e.lastSeen);
            this.t.note(`syn_recv: entered as ${next}`);
          }
          real = e.real;
        }
      }
      if (real === undefined && tcp && (p.tcpFlags & (TCP_SYN | TCP_RST)) !== TCP_SYN) {
        if (stale) this.t.write({ map: 'conns', key, value: null });
        const got = this.stray(svc, p, f, key);
        if (typeof got !== 'object') return this.t.drop(got);
        real = got.real;
        scheduled = got.promoted;
      } else if (real === undefined) {
        const pick = this.forNewConnection(svc, p, f);
        if (typeof pick !== 'number') return this.t.drop(pick);
        const r = this.slot(pick);
        if (!r) return this.t.drop('DROP_BAD_REAL');
        const state = tcp ? tcpNextState(CS.NONE, p.tcpFlags) : CS.UDP;
        if (tcp && r.method !== ABI.LVS_FWD_NAT && state === CS.SYN_RECV) {
          // DR / Tun: the SYN_RECV connection kept out of lvs_conns, over its slot's
          if (stale) this.t.write({ map: 'conns', key, value: null });
          const slots = this.synRecvWays(key);
          const ways = slots.map((x) => this.state.synrecv.get(x));
          const way = synRecvVictim(key, ways, (e) => this.synRecvFresh(e ?? synRecvOf({ key: '00'.repeat(40), lastSeen: 0n, real: 0, gen: 0, svcId: 0 })) !== undefined);
          const slot = slots[way]!;
          const old = ways[way];
          if (this.synRecvLive(old)) {
            this.lc.unbind(old!.real, CS.SYN_RECV);
            this.t.count('CONN_SYNRECV_EVICTED');
          }
          this.t.write({ map: 'synrecv', slot, value: synRecvOf({ key, lastSeen: this.now, real: pick, gen: r.gen, svcId: svc.id }) });
          this.lc.bind(pick, CS.SYN_RECV);
          this.t.count('CONN_NEW');
          this.t.count('CONN_SYNRECV_NEW');
          this.t.note('syn_recv: new');
        } else {
          this.t.write({ map: 'conns', key, value: { lastSeen: this.now, real: pick, gen: r.gen, state } });
          this.lc.bind(pick, state);
          this.mirror(f, r, { lastSeen: this.now, real: pick, gen: r.gen, state });
          this.t.count('CONN_NEW');
          this.syncConn(svc, p, r, CS.NONE, state, 0n);
        }
        real = pick;
        scheduled = true;
      }
    }

    const r = this.slot(real);
    if (!r || !(r.flags & ABI.LVS_REAL_F_ACTIVE)) return this.t.drop('DROP_BAD_REAL');
    if (this.cfg.knobs.frag && p.frag === 'first') {
      this.t.write({ map: 'frags', key: fragKeyHex(p.saddr, p.daddr, p.fragId, p.proto, p.family), value: { lastSeen: this.now, real, gen: r.gen } });
      this.t.count('FRAG_FIRST');
    }
    this.t.account(svc.id, real, p.l3Len, scheduled);
    return { forward: real };
  }

  /** Fragments: a non-first fragment follows its first fragment's realserver. */
  laterFragment(p: Packet): Decision {
    if (!this.cfg.knobs.frag) return this.t.pass('PASS_FRAG_NO_STATE');
    const pin = this.state.frags.get(fragKeyHex(p.saddr, p.daddr, p.fragId, p.proto, p.family));
    if (!pin || age(this.now, pin.lastSeen) > FRAG_TIMEOUT_NS) return this.t.pass('PASS_FRAG_NO_STATE');
    const r = this.stillServing(pin.real, pin.gen);
    if (!r) return this.t.drop('DROP_BAD_REAL');
    this.t.count('FRAG_FOLLOW');
    // a NAT reply's fragment (from the realserver's address): OutPkts, counted where it is sent
    if (r.method === ABI.LVS_FWD_NAT && Buffer.from(p.saddr).equals(Buffer.from(r.addr))) return { reply: pin.real };
    this.t.account(r.svcId, pin.real, p.l3Len, false);
    return { forward: pin.real };
  }

  /** Step 6: an ICMP error quoting VIP:port -> client:port goes where the client's flow goes. */
  icmpError(frame: Uint8Array, p: Packet): Decision {
    const q = quotedFlow(frame, p);
    if (!q) return this.t.pass('PASS_NOT_VIP');
    const svc = this.service(q);
    if (!svc) {
      // LVS-NAT: an error from the realserver's side about the client's packet to RIP:port
      const found = this.cfg.settings.flags & ABI.LVS_CFG_F_NAT ? this.natFind(q) : undefined;
      if (found?.gone) return this.t.drop('DROP_REAL_GONE');
      if (found) return { reply: found.c.real };
      return this.t.pass('PASS_NOT_VIP');
    }
    let real: number;
    const c = this.state.conns.get(flowKeyHex(q));
    const qk = flowKeyHex(q);
    const sr = this.synRecvWays(qk).map((x) => this.state.synrecv.get(x))
      .find((e) => e && e.key === qk && synRecvValid(e) && this.stillServing(e.real, e.gen));
    if (c && this.stillServing(c.real, c.gen)) {
      real = c.real;
      this.t.note('icmp: conn');
    } else if (sr) {
      real = sr.real; // a SYN_RECV connection's realserver (no timeout, as for entries)
      this.t.note('icmp: syn_recv');
    } else {
      const pick = this.fromTable(svc, q);
      if (typeof pick !== 'number') return this.t.drop(pick);
      real = pick;
    }
    const r = this.slot(real);
    if (!r || !(r.flags & ABI.LVS_REAL_F_ACTIVE)) return this.t.drop('DROP_BAD_REAL');
    this.t.count('ICMP_ERR_FWD');
    this.t.account(svc.id, real, p.l3Len, false);
    return { forward: real };
  }
}

export function isIcmpError(p: Packet): boolean {
  if (p.family === 4) return p.proto === PROTO.ICMP && [3, 11, 12].includes(p.icmpType);
  return p.proto === PROTO.ICMPV6 && p.icmpType >= 1 && p.icmpType <= 4;
}

/** The client's flow an ICMP error is about: the quoted header (same family as the error) read
 *  backwards. Undefined when the quote is not TCP/UDP, is cut short, or is not addressed from the
 *  address the error is sent to (errors about a VIP's packets are addressed to that VIP). */
export function quotedFlow(frame: Uint8Array, p: Packet): FlowTuple | undefined {
  const at = p.l4Off + 8;
  let proto: number, src: Uint8Array, dst: Uint8Array, portsAt: number;
  if (p.family === 4) {
    if (at + 20 > frame.length) return undefined;
    const ihl = frame[at]! & 0xf;
    if (frame[at]! >> 4 !== 4 || ihl < 5) return undefined;
    proto = frame[at + 9]!;
    src = new Uint8Array(16); src.set(frame.subarray(at + 12, at + 16));
    dst = new Uint8Array(16); dst.set(frame.subarray(at + 16, at + 20));
    portsAt = at + ihl * 4;
  } else {
    if (at + 40 > frame.length) return undefined;
    proto = frame[at + 6]!;
    src = Uint8Array.from(frame.subarray(at + 8, at + 24));
    dst = Uint8Array.from(frame.subarray(at + 24, at + 40));
    portsAt = at + 40;
  }
  if (proto !== PROTO.TCP && proto !== PROTO.UDP) return undefined;
  if (portsAt + 4 > frame.length) return undefined;
  if (!Buffer.from(src).equals(Buffer.from(p.daddr))) return undefined;
  const qsport = (frame[portsAt]! << 8) | frame[portsAt + 1]!;
  const qdport = (frame[portsAt + 2]! << 8) | frame[portsAt + 3]!;
  return { saddr: dst, daddr: src, sport: qdport, dport: qsport, proto, family: p.family };
}

/** Runs one frame through the model. `state` is read, never written. */
export function step(cfg: StaticConfig, state: DynamicState, frame: Buffer, now: bigint): Outcome {
  const t = new Trace(cfg);
  const finish = (action: number, out: Buffer | null): Outcome => ({
    action, out, counters: t.counters, svcStats: t.svcStats, realStats: t.realStats, writes: t.writes, sync: t.sync, path: t.path,
  });
  const parsed = parseFrame(frame, cfg.knobs.ipv6);
  if (!parsed.ok) {
    t.count(parsed.reason);
    return finish(XdpAction.PASS, frame);
  }
  const p = parsed.pkt;
  t.note(`v${p.family} proto ${p.proto} ${p.frag}`);
  const d = new Director(cfg, state, now, t);
  let decision: Decision;
  let aboutIcmpError = false;
  // Non-first fragments and ICMP errors are checked before their handlers (they have no
  // service lookup of their own in front).
  const egress = acceptedEgress(cfg, frame);
  if (p.frag === 'later') decision = egress ? d.laterFragment(p) : t.pass('PASS_NOT_OUR_MAC');
  else if (p.proto === PROTO.TCP || p.proto === PROTO.UDP) decision = d.flow(frame, p);
  else if (cfg.knobs.icmp && isIcmpError(p)) {
    aboutIcmpError = true;
    decision = egress ? d.icmpError(frame, p) : t.pass('PASS_NOT_OUR_MAC');
  } else decision = t.pass('PASS_NOT_VIP');

  if ('action' in decision) return finish(decision.action, decision.action === XdpAction.PASS ? frame : null);
  if ('reply' in decision) {
    // LVS-NAT, the realserver's side: back to VIP:vport toward the FIB's next hop
    const rr = d.slot(decision.reply)!;
    if (rr.family !== p.family) {
      t.count('DROP_BAD_REAL');
      return finish(XdpAction.DROP, null);
    }
    if (hopLimit(frame, p) <= 1) {
      t.count('PASS_NAT_TTL');
      return finish(XdpAction.PASS, frame);
    }
    const fib = cfg.fib?.get(Buffer.from(p.daddr).toString('hex'));
    // the FIB refuses a packet larger than the egress MTU (BPF_FIB_LKUP_RET_FRAG_NEEDED) too
    if (!fib || p.l3Len > fib.mtu || (fib.ifindex !== cfg.ingressIfindex && !cfg.txPorts.has(fib.ifindex))) {
      t.count('PASS_NAT_NO_ROUTE');
      return finish(XdpAction.PASS, frame);
    }
    const out = buildNatReply(frame, p, rr, fib, aboutIcmpError);
    if (!out) {
      t.count('DROP_NAT_FAILED');
      return finish(XdpAction.DROP, null);
    }
    if (fib.ifindex !== cfg.ingressIfindex) t.count('FWD_REDIRECT');
    if (aboutIcmpError) t.count('ICMP_NAT_REPLY');
    t.accountOut(rr.svcId, decision.reply, p.l3Len);
    t.count('FWD_NAT_REPLY');
    return finish(fib.ifindex === cfg.ingressIfindex ? XdpAction.TX : XdpAction.REDIRECT, out);
  }
  const r = d.slot(decision.forward)!;
  t.note(`real ${decision.forward} method ${r.method} family ${r.family}`);

  const transmit = (out: Buffer, fwd: CounterName): Outcome => {
    if (r.ifindex === 0) {
      t.count(fwd);
      return finish(XdpAction.TX, out);
    }
    if (!cfg.txPorts.has(r.ifindex)) {
      t.count('DROP_REDIRECT_FAILED');
      return finish(XdpAction.DROP, null);
    }
    t.count(fwd);
    t.count('FWD_REDIRECT');
    return finish(XdpAction.REDIRECT, out);
  };

  if (r.method === ABI.LVS_FWD_NAT) {
    if (r.family !== p.family) {
      t.count('DROP_BAD_REAL');
      return finish(XdpAction.DROP, null);
    }
    const out = buildNatForward(frame, p, r, egress!, aboutIcmpError);
    if (!out) {
      t.count('DROP_NAT_FAILED');
      return finish(XdpAction.DROP, null);
    }
    return transmit(out, 'FWD_NAT');
  }
  if (r.method !== ABI.LVS_FWD_TUN) {
    if (r.family !== p.family) { // DR cannot change the address family
      t.count('DROP_BAD_REAL');
      return finish(XdpAction.DROP, null);
    }
    return transmit(buildDr(frame, r, egress!), 'FWD_DR');
  }
  if (!cfg.knobs.tun) {
    t.count('DROP_TUN_DISABLED');
    return finish(XdpAction.DROP, null);
  }
  const outer = tunnelOuterLen(r);
  const mtu = cfg.settings.tunMtu || 1500;
  if (p.l3Len + outer > mtu) {
    if (aboutIcmpError || !p.df || !cfg.knobs.icmp || mtu <= outer + MIN_IPV4_MTU) {
      t.count('DROP_TOO_BIG');
      return finish(XdpAction.DROP, null);
    }
    t.count('TX_ICMP_TOO_BIG');
    return finish(XdpAction.TX, buildTooBig(frame, p, mtu - outer));
  }
  return transmit(buildTun(frame, p, r, cfg.settings, egress!), 'FWD_TUN');
}
