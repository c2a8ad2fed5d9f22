/**
 * Connection sync, backup side: IPVS sync entries (src/sync/proto.ts `SyncConn`, decoded from a
 * master's messages) inserted into the running director's connection table (`lvs_conns`) and
 * persistence templates (`lvs_persist`), with the bytes the data plane itself would have written,
 * so that after a failover the flows and persistent clients continue on the realserver the
 * master gave them, whatever the scheduler (the backup's rr cursor or lc counts never decide
 * for a synced flow).
 *
 * What the master's entry becomes here (ip_vs_proc_conn in net/netfilter/ipvs/ip_vs_sync.c is
 * the model; the differences are deliberate and listed):
 * - **Service**: by firewall mark when the entry has one and a mark service exists, else by
 *   (protocol, VIP, port), else the VIP's all-ports service (IPVS's ip_vs_service_find order).
 *   **Realserver**: by address within that service (one slot per service and RIP); an LVS-NAT
 *   realserver's port must match the entry's dport. IPVS's backup creates a connection without
 *   a destination when it has none; lvs-xdp cannot forward without its realserver slot, so such
 *   entries are skipped and counted by reason (`no-service`, `no-realserver`, `unresolved`,
 *   `realserver-port`), as are entries of another forwarding method (`method`: IPVS would let
 *   its own destination's method win; a flow set up by NAT cannot go on by DR or back), of a
 *   protocol or state lvs-xdp does not hold (`protocol`, `state`), of a one-packet-scheduling
 *   service (`ops`: those have no entries) and templates of a service without persistence
 *   (`not-persistent`).
 * - **Connection entry** (struct lvs_conn): the realserver's slot and generation, the state
 *   mapped by `lvsStateOf`, and `last_seen_ns` in bpf_ktime_get_ns() time (CLOCK_MONOTONIC, which
 *   process.hrtime.bigint() reads too). The entry must expire after the message's timeout, but
 *   an entry's age is checked against its state's configured timeout, and a timestamp in the
 *   future reads as old (lvs_clock.h): so a shorter message timeout is written as a timestamp
 *   in the past (`now - (state timeout - message timeout)`), and a longer one, or none, as now:
 *   a backup keeps an entry at most its own state timeout (give both directors the same
 *   timeouts; lvs-xdp's master sends its state's timeout). A state without timeout (0) keeps
 *   the entry until it is replaced or evicted. The first packet after a failover refreshes the
 *   entry to the backup's own timeout, as any packet does.
 * - **LVS-NAT**: the reply entry too (key of lvs_nat.h's lvs_nat_reply_key, the same value).
 * - **Template** (TEMPLATE flag): `lvs_persist` keyed as lvs_persist.h keys it (client address
 *   masked by the service's persistence netmask, read from its `lvs_services` entry; service id;
 *   family). Its validity runs to `last_seen + persistence timeout`, and a template may carry a
 *   timestamp in the future (lvs_tpl_live): the message's timeout is expressed exactly, longer or
 *   shorter, as `now + message timeout - persistence timeout`. A connection inserted under a
 *   persistent service extends the client's template to the connection's expiry, as a refresh
 *   in the data plane does (lvs_persist_touch): IPVS keeps a template while it controls
 *   connections.
 * - **An entry the backup already has.** Same realserver: updated (state, timestamp, never
 *   earlier than the packets seen here made it), as IPVS updates its connection. Another realserver, still live here (slot of that generation, not
 *   expired): IPVS replaces it when the master's entry is active (no INACTIVE flag: an
 *   established TCP connection) and ignores the master's entry otherwise ("the expiration message
 *   for a connection that was already replaced"); lvs-xdp does the same (`replaced`, or skipped
 *   as `conflict`). A template for another realserver: IPVS keeps its own template's
 *   destination; lvs-xdp keeps the one valid longer (a local template that a live local
 *   connection has pushed into the future wins, a stale one from when this director was active
 *   loses), so the master's choice wins unless this director is serving that client itself.
 * - **Live connection counts** (lvs_real_conns, what the least-connection family and thresholds
 *   decide on) are bound on insert as the data plane binds them: a new entry bound, a state
 *   change across ESTABLISHED moved, a replaced live entry or an expired one found unbound. The
 *   deltas of a batch are added in one read and write per slot; a bind the data plane makes
 *   between that read and write is lost until `run`'s recount (every 2 s), the same window the
 *   recount itself has.
 *
 * Speed: services and realservers are resolved through maps built once per applied
 * configuration (`SyncInserter` holds them; `Director.insertSynced` rebuilds it when the
 * configuration changes); a batch costs one lookup per entry (for the rule above) and one batch
 * update per map.
 */
import { ABI } from '../abi/generated.js';
import { CONN, DEST, FLOW_KEY, PERSIST_KEY, PIN, SVC, decode, encode } from '../abi/layout.js';
import { parseAddress } from '../model/address.js';
import { serviceId, type DirectorConfig } from '../model/types.js';
import { realId, serviceKey, timeoutsByState } from '../dataplane/compile.js';
import { decodeLiveCounts, encodeLiveCounts, fixedCounts } from '../director/reader.js';
import { u32, type MapWriter } from '../director/writer.js';
import type { AppliedState } from '../director/snapshot.js';
import { IPPROTO, IP_VS_CONN_F, lvsMethodOf, lvsStateOf, type SyncConn } from './proto.js';

const NS = 1_000_000_000n;

/** Why a sync entry was not inserted. */
export type SyncSkipReason =
  | 'address' | 'protocol' | 'state' | 'no-service' | 'ops' | 'not-persistent' | 'no-realserver' | 'unresolved'
  | 'realserver-port' | 'method' | 'conflict';

export interface SyncInsertResult {
  /** Connection entries written (client side; new, updated or replacing another realserver's). */
  conns: number;
  /** Of `conns`: entries that were live here on the same realserver (state and time updated). */
  updated: number;
  /** Of `conns`: live entries of another realserver replaced (the master's entry is active). */
  replaced: number;
  /** LVS-NAT reply entries written. */
  replies: number;
  /** Persistence templates written (new or updated). */
  templates: number;
  /** Entries not inserted, by reason. */
  skipped: Partial<Record<SyncSkipReason, number>>;
}

export interface SyncInsertOptions {
  /** bpf_ktime_get_ns() time the entries are inserted at (default: process.hrtime.bigint()). */
  now?: bigint;
}

/** What the inserter writes through and resolves against: the director's applied state and its map writer. */
export interface SyncTarget {
  readonly applied: AppliedState;
  readonly writer: MapWriter;
}

// ---- pure parts -------------------------------------------------------------------------------

/** A realserver as a sync entry resolves to it. */
export interface SyncReal {
  index: number;
  gen: number;
  method: 'dr' | 'tun' | 'nat';
  /** 16 bytes (IPv4 in the first 4), as lvs_real.addr. */
  addr: Uint8Array;
  /** LVS-NAT: the realserver's port (0: the client's destination port is kept). */
  port: number;
  unresolved: boolean;
}

/** A service as a sync entry resolves to it. */
export interface SyncService {
  id: string;
  svcId: number;
  family: 4 | 6;
  /** LVS_SVC_F_* of its entry. */
  flags: number;
  /** Persistence timeout in seconds (0: not persistent). */
  persistTimeout: number;
  /** 16 bytes: lvs_svc.persist_mask. */
  persistMask: Uint8Array;
  /** Realservers by address (hex of their 16 bytes). */
  reals: Map<string, SyncReal>;
}

/** The lookups built once per applied configuration. */
export interface SyncIndex {
  /** "proto/addrhex/port" -> service. */
  byTuple: Map<string, SyncService>;
  /** "family/mark" -> firewall-mark service. */
  byMark: Map<string, SyncService>;
  /** lvs_reals index -> generation live there (in use or deleted with its flows kept). */
  slotGen: Map<number, number>;
  /** lvs_reals index -> realserver (configured), for replaced NAT entries. */
  byIndex: Map<number, SyncReal>;
  /** Idle timeout in seconds by LVS_CS_* (0: never expires). */
  timeouts: number[];
}

/** 16 bytes of an address (IPv4 in the first 4), null when it is none. Dotted quads (what the
 *  decoder gives) without the general parser: it was a fifth of an insert's time. */
function addr16(text: string): Uint8Array | null {
  const q = text.split('.');
  if (q.length === 4) {
    const b = new Uint8Array(16);
    for (let i = 0; i < 4; i++) {
      const t = q[i]!;
      if (t === '' || t.length > 3 || (t.length > 1 && t[0] === '0')) return null;
      let v = 0;
      for (let j = 0; j < t.length; j++) {
        const d = t.charCodeAt(j) - 48;
        if (d < 0 || d > 9) return null;
        v = v * 10 + d;
      }
      if (v > 255) return null;
      b[i] = v;
    }
    return b;
  }
  const p = parseAddress(text);
  if (!p) return null;
  const b = new Uint8Array(16);
  b.set(p.bytes);
  return b;
}
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const tupleKey = (proto: number, addr: Uint8Array, port: number): string => `${proto}/${hex(addr)}/${port}`;

/**
 * The lookups of an applied configuration. `serviceEntry` returns a service's `lvs_services`
 * value (its persistence mask and flags as the data plane reads them), null when it has none.
 */
export function buildSyncIndex(applied: AppliedState, serviceEntry: (key: Buffer) => Buffer | null): SyncIndex {
  const cfg: DirectorConfig = applied.config;
  const byTuple = new Map<string, SyncService>();
  const byMark = new Map<string, SyncService>();
  const byIndex = new Map<number, SyncReal>();
  const slotGen = new Map<number, number>();
  for (const a of Object.values(applied.allocation.reals)) slotGen.set(a.index, a.gen);
  for (const g of Object.values(applied.ghosts?.reals ?? {})) slotGen.set(g.index, g.gen);
  for (const s of cfg.services) {
    const id = serviceId(s);
    const svcId = applied.allocation.services[id];
    const entry = serviceEntry(serviceKey(s));
    if (svcId === undefined || !entry) continue;
    const v = decode(SVC, entry);
    const addr = addr16(s.vip)!;
    const svc: SyncService = {
      id, svcId, family: parseAddress(s.vip)!.family, flags: v.flags as number,
      persistTimeout: v.persist_timeout as number, persistMask: v.persist_mask as Uint8Array, reals: new Map(),
    };
    for (const r of s.realservers) {
      const a = applied.allocation.reals[realId(s, r)];
      if (!a) continue;
      const real: SyncReal = {
        index: a.index, gen: a.gen, method: r.method, addr: addr16(r.address)!, port: r.method === 'nat' ? r.port : 0,
        unresolved: applied.unresolved?.[realId(s, r)] !== undefined,
      };
      svc.reals.set(hex(real.addr), real);
      byIndex.set(a.index, real);
    }
    if (s.fwmark) byMark.set(`${svc.family}/${s.fwmark >>> 0}`, svc);
    else byTuple.set(tupleKey(s.protocol === 'tcp' ? IPPROTO.TCP : IPPROTO.UDP, addr, s.port), svc);
  }
  return { byTuple, byMark, slotGen, byIndex, timeouts: timeoutsByState(cfg.settings?.timeouts) };
}

/** The service of a sync entry: its mark's, else (protocol, VIP, port)'s, else the VIP's all-ports service. */
export function syncServiceOf(ix: SyncIndex, c: SyncConn, vaddr: Uint8Array): SyncService | undefined {
  if (c.fwmark) {
    const m = ix.byMark.get(`${c.family}/${c.fwmark >>> 0}`);
    if (m) return m;
  }
  return ix.byTuple.get(tupleKey(c.protocol, vaddr, c.vport)) ?? ix.byTuple.get(tupleKey(c.protocol, vaddr, 0));
}

/** The lvs_conns key of a client flow (lvs_flow_key, dir LVS_DIR_CLIENT). */
export function flowKeyOf(caddr: Uint8Array, vaddr: Uint8Array, cport: number, vport: number, proto: number, family: 4 | 6): Buffer {
  return encode(FLOW_KEY, { saddr: caddr, daddr: vaddr, sport: cport, dport: vport, proto, family, dir: ABI.LVS_DIR_CLIENT });
}

/** The lvs_conns key of an LVS-NAT flow's reply entry (lvs_nat.h lvs_nat_reply_key). */
export function replyKeyOf(caddr: Uint8Array, cport: number, vport: number, proto: number, family: 4 | 6, real: Pick<SyncReal, 'addr' | 'port'>): Buffer {
  return encode(FLOW_KEY, {
    saddr: real.addr, daddr: caddr, sport: real.port ? real.port : vport, dport: cport, proto, family, dir: ABI.LVS_DIR_REPLY,
  });
}

/** The lvs_persist key of a client (lvs_persist.h lvs_persist_key_of). */
export function persistKeyOf(caddr: Uint8Array, svc: Pick<SyncService, 'svcId' | 'persistMask' | 'family'>): Buffer {
  const masked = new Uint8Array(16);
  for (let i = 0; i < 16; i++) masked[i] = caddr[i]! & svc.persistMask[i]!;
  return encode(PERSIST_KEY, { caddr: masked, svc_id: svc.svcId, family: svc.family });
}

/**
 * last_seen_ns of a synced connection entry so that it expires `timeout` seconds after `now`
 * under its state's timeout `stateTimeout`: earlier than now by the difference when the message's
 * timeout is shorter; now when it is longer or absent (an entry cannot outlive its state's
 * timeout: a timestamp in the future reads as old) or when the state never expires.
 */
export function connStamp(now: bigint, timeout: number, stateTimeout: number): bigint {
  if (timeout === 0 || stateTimeout === 0 || timeout >= stateTimeout) return now;
  return now - BigInt(stateTimeout - timeout) * NS;
}

/** last_seen_ns of a synced template valid `timeout` seconds from now under persistence timeout
 *  `persistTimeout` (a template may lie in the future: lvs_tpl_live). 0: the persistence timeout. */
export function templateStamp(now: bigint, timeout: number, persistTimeout: number): bigint {
  if (timeout === 0) return now;
  return now + BigInt(timeout) * NS - BigInt(persistTimeout) * NS;
}

/** A template stamped `then` is valid at `now` (lvs_persist.h lvs_tpl_live). */
export function templateLive(now: bigint, then: bigint, persistTimeout: number): boolean {
  return then >= now || now - then <= BigInt(persistTimeout) * NS;
}

/** A connection entry stamped `then` in a state with timeout `stateTimeout` has expired at `now`
 *  (u64 ages as the data plane computes them: a future timestamp is old). */
export function connExpired(now: bigint, then: bigint, stateTimeout: number): boolean {
  if (stateTimeout === 0) return false;
  const age = BigInt.asUintN(64, now - then);
  return age > BigInt(stateTimeout) * NS;
}

/** What a synced connection does to an entry already there for the same flow. */
export type ConnDecision = 'insert' | 'update' | 'replace' | 'conflict';

/**
 * IPVS's rule (ip_vs_proc_conn), with "already there" meaning live in the data plane's sense:
 * no entry, or one whose slot is another generation or that has expired: insert. Live on the
 * same realserver slot: update. Live on another: replaced when the master's entry is active (no
 * IP_VS_CONN_F_INACTIVE), kept otherwise.
 */
export function connDecision(
  local: { real: number; gen: number; state: number; lastSeen: bigint } | null, slotGen: ReadonlyMap<number, number>,
  timeouts: readonly number[], now: bigint, synced: { real: number; gen: number; flags: number },
): ConnDecision {
  if (!local || slotGen.get(local.real) !== local.gen || connExpired(now, local.lastSeen, timeouts[local.state] ?? 0)) return 'insert';
  if (local.real === synced.real && local.gen === synced.gen) return 'update';
  return synced.flags & IP_VS_CONN_F.INACTIVE ? 'conflict' : 'replace';
}

const isActive = (state: number): boolean => state === ABI.LVS_CS_ESTABLISHED;

/** The LVS_CS_* value a synced connection is stored in (proto.ts lvsStateOf), null when lvs-xdp
 *  holds no such connection (templates, other protocols, a state out of range). */
export function syncedState(c: Pick<SyncConn, 'protocol' | 'state' | 'flags'>): number | null {
  const s = lvsStateOf(c.protocol, c.state, c.flags);
  return s === null ? null : ABI[`LVS_CS_${s}`];
}

// ---- the inserter -------------------------------------------------------------------------------

interface Pending { key: Buffer; value: Buffer }

/** Inserts sync entries into one applied configuration's director; build a new one when the
 *  configuration changes (its lookups are that configuration's). */
export class SyncInserter {
  readonly index: SyncIndex;

  constructor(readonly target: SyncTarget) {
    const services = target.writer.maps.lvs_services;
    this.index = buildSyncIndex(target.applied, (k) => services.lookup(k));
  }

  get applied(): AppliedState {
    return this.target.applied;
  }

  insert(conns: readonly SyncConn[], opts: SyncInsertOptions = {}): SyncInsertResult {
    const now = opts.now ?? process.hrtime.bigint();
    const ix = this.index;
    const maps = this.target.writer.maps;
    const out: SyncInsertResult = { conns: 0, updated: 0, replaced: 0, replies: 0, templates: 0, skipped: {} };
    const skip = (why: SyncSkipReason): void => {
      out.skipped[why] = (out.skipped[why] ?? 0) + 1;
    };
    // Writes of this batch by key: a later entry for the same key sees the earlier one.
    const connW = new Map<string, Pending>();
    const tplW = new Map<string, Pending>();
    const deletes = new Map<string, Buffer>();
    const delta = new Map<number, { active: number; inactive: number }>();
    const bind = (index: number, state: number, n: 1 | -1): void => {
      const d = delta.get(index) ?? { active: 0, inactive: 0 };
      if (isActive(state)) d.active += n;
      else d.inactive += n;
      delta.set(index, d);
    };
    const connAt = (key: Buffer): Buffer | null => connW.get(key.toString('hex'))?.value ?? maps.lvs_conns.lookup(key);
    const tplAt = (key: Buffer): Buffer | null => tplW.get(key.toString('hex'))?.value ?? maps.lvs_persist.lookup(key);
    const putConn = (key: Buffer, value: Buffer): void => {
      const h = key.toString('hex');
      connW.set(h, { key, value });
      deletes.delete(h);
    };

    // Templates first (as IPVS's master sends a connection's template before it): a connection
    // then extends its client's template whatever the order the entries came in.
    const ordered = [...conns.filter((c) => c.flags & IP_VS_CONN_F.TEMPLATE), ...conns.filter((c) => !(c.flags & IP_VS_CONN_F.TEMPLATE))];
    for (const c of ordered) {
      const template = (c.flags & IP_VS_CONN_F.TEMPLATE) !== 0;
      const caddr = addr16(c.caddr);
      const vaddr = addr16(c.vaddr);
      const daddr = addr16(c.daddr);
      if (!caddr || !vaddr || !daddr) { skip('address'); continue; }
      let state = 0;
      if (!template) {
        if (c.protocol !== IPPROTO.TCP && c.protocol !== IPPROTO.UDP) { skip('protocol'); continue; }
        const s = syncedState(c);
        if (s === null) { skip('state'); continue; }
        state = s;
      }
      const svc = syncServiceOf(ix, c, vaddr);
      if (!svc || svc.family !== c.family) { skip('no-service'); continue; }
      if (svc.flags & ABI.LVS_SVC_F_OPS) { skip('ops'); continue; }
      if (template && !(svc.flags & ABI.LVS_SVC_F_PERSIST)) { skip('not-persistent'); continue; }
      const real = svc.reals.get(hex(daddr));
      if (!real) { skip('no-realserver'); continue; }
      if (real.unresolved) { skip('unresolved'); continue; }
      if (real.method === 'nat' && real.port && c.dport && c.dport !== real.port) { skip('realserver-port'); continue; }

      if (template) {
        // A template forwards nothing: its method bits are the master's destination's, not checked.
        const key = persistKeyOf(caddr, svc);
        let stamp = templateStamp(now, c.timeout, svc.persistTimeout);
        const held = tplAt(key);
        if (held) {
          const t = decode(PIN, held);
          const live = ix.slotGen.get(t.real as number) === (t.gen as number) && templateLive(now, t.last_seen_ns as bigint, svc.persistTimeout);
          if (live) {
            const then = t.last_seen_ns as bigint;
            if (t.real === real.index && t.gen === real.gen) {
              if (then > stamp) stamp = then; // never shortens what a connection set
            } else if (then > stamp) {
              skip('conflict');
              continue;
            }
          }
        }
        tplW.set(key.toString('hex'), { key, value: encode(PIN, { last_seen_ns: stamp, real: real.index, gen: real.gen }) });
        out.templates++;
        continue;
      }

      if (lvsMethodOf(c.flags) !== real.method) { skip('method'); continue; }
      const key = flowKeyOf(caddr, vaddr, c.cport, c.vport, c.protocol, c.family);
      const stateTimeout = ix.timeouts[state] ?? 0;
      let stamp = connStamp(now, c.timeout, stateTimeout);
      const heldBuf = connAt(key);
      const held = heldBuf ? decode(CONN, heldBuf) : null;
      const local = held ? { real: held.real as number, gen: held.gen as number, state: held.state as number, lastSeen: held.last_seen_ns as bigint } : null;
      const decision = connDecision(local, ix.slotGen, ix.timeouts, now, { real: real.index, gen: real.gen, flags: c.flags });
      if (decision === 'conflict') { skip('conflict'); continue; }
      if (local && ix.slotGen.get(local.real) === local.gen) {
        // As the data plane: an entry of its slot's generation found expired is unbound; one of
        // an older generation was never this slot's (conn_real_gone: nothing to unbind).
        if (decision === 'insert') bind(local.real, local.state, -1);
        else if (decision === 'replace') {
          bind(local.real, local.state, -1);
          const was = ix.byIndex.get(local.real);
          if (was?.method === 'nat') {
            const rk = replyKeyOf(caddr, c.cport, c.vport, c.protocol, c.family, was);
            const h = rk.toString('hex');
            connW.delete(h);
            deletes.set(h, rk);
          }
        }
      }
      if (decision === 'update') {
        // never shortens what this director's own packets set: they are as fresh as the master's
        if (local!.lastSeen > stamp && local!.lastSeen <= now) stamp = local!.lastSeen;
        if (isActive(local!.state) !== isActive(state)) { bind(real.index, local!.state, -1); bind(real.index, state, 1); }
        out.updated++;
      } else {
        bind(real.index, state, 1);
        if (decision === 'replace') out.replaced++;
      }
      const value = encode(CONN, { last_seen_ns: stamp, real: real.index, gen: real.gen, state });
      putConn(key, value);
      out.conns++;
      if (real.method === 'nat') {
        putConn(replyKeyOf(caddr, c.cport, c.vport, c.protocol, c.family, real), value);
        out.replies++;
      }
      // lvs_persist_touch: the client's template stays valid at least as long as this connection.
      if ((svc.flags & ABI.LVS_SVC_F_PERSIST) && stateTimeout) {
        const pk = persistKeyOf(caddr, svc);
        const t = tplAt(pk);
        if (t) {
          const from = stamp + (stateTimeout > svc.persistTimeout ? BigInt(stateTimeout - svc.persistTimeout) * NS : 0n);
          const tv = decode(PIN, t);
          if ((tv.last_seen_ns as bigint) < from) tplW.set(pk.toString('hex'), { key: pk, value: encode(PIN, { ...tv, last_seen_ns: from }) });
        }
      }
    }

    const w = this.target.writer;
    w.putEntries('lvs_persist', [...tplW.values()].map((p) => p.key), [...tplW.values()].map((p) => p.value));
    w.putEntries('lvs_conns', [...connW.values()].map((p) => p.key), [...connW.values()].map((p) => p.value));
    w.deleteEntries('lvs_conns', [...deletes.values()]);
    this.bindCounts(delta);
    return out;
  }

  /** Live counts moved by a batch's deltas, the overload flag by IPVS's rules (reader.fixedCounts). */
  private bindCounts(delta: Map<number, { active: number; inactive: number }>): void {
    const maps = this.target.writer.maps;
    const fixes: { index: number; value: Buffer }[] = [];
    for (const [index, d] of delta) {
      if (d.active === 0 && d.inactive === 0) continue;
      const c = maps.lvs_real_conns.lookup(u32(index));
      const dest = maps.lvs_dests.lookup(u32(index));
      if (!c) continue;
      const held = decodeLiveCounts(c);
      const dv = dest ? decode(DEST, dest) : { u_thresh: 0, l_thresh: 0 };
      const want = fixedCounts(held, { active: held.active + d.active, inactive: held.inactive + d.inactive }, dv.u_thresh as number, dv.l_thresh as number);
      if (want) fixes.push({ index, value: encodeLiveCounts(want) });
    }
    this.target.writer.setConnCounts(fixes);
  }
}

/** One batch into a director's maps (a SyncInserter built for it; keep one for repeated batches). */
export function insertSynced(target: SyncTarget, conns: readonly SyncConn[], opts: SyncInsertOptions = {}): SyncInsertResult {
  return new SyncInserter(target).insert(conns, opts);
}
