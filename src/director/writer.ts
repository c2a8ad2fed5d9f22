/**
 * The map writer: the only code that writes the director's maps. It executes plans
 * (src/director/plan.ts) step by step, and offers typed functions for the dynamic maps
 * (connections, persistence templates, fragments, rr cursors, counters being zeroed). The
 * director, the packet-test harnesses, the differential fuzzer and the benchmarks all write
 * through it, so every map gets its bytes the way production writes them.
 */
import { BpfMap, possibleCpus, MapType, MapFlag } from '../native/index.js';
import { STATS, REAL_CONNS } from '../abi/layout.js';
import { DIRECTOR_MAPS, type DirectorMap, type LoadedDirector } from '../dataplane/loader.js';
import type { Step, TableFill } from './plan.js';
import { encodeL2Addr, encodeL2If, encodeL2Key } from '../dataplane/l2addrs.js';

/** The name of the placeholder table freed lvs_tables slots point at (park-tables): not a lookup
 *  table of any service (status counts its memory, not it). */
export const PARKED_TABLE = 'lvs_t_parked';

export type DirectorMaps = Record<DirectorMap, BpfMap>;
export type DynamicMap = 'lvs_conns' | 'lvs_strays' | 'lvs_persist' | 'lvs_frags';

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/**
 * Bulk insert into one map that is being built (an upgrade's staged map, filled before any program
 * reads it): the migration's only write.
 */
export function writeEntries(map: BpfMap, keys: Buffer[], values: Buffer[]): void {
  if (keys.length) map.updateMany(keys, values);
}

export interface ExecuteOptions {
  /** First step to run (0-based): a replay after a crash skips what is already written. */
  from?: number;
  /** A service's compiled table, for table fills without inline entries. */
  tableOf?: (service: string) => Uint32Array;
  /**
   * Leave a table slot alone when the inner map there already holds exactly these entries
   * (a replay after a crash, a harness re-installing the same tables): every lvs_tables write
   * waits an RCU grace period, reading a table back does not.
   */
  reuseEqualTables?: boolean;
  /** Called once a table from `tableOf` is in its inner map: the caller may let it go. */
  tableWritten?: (service: string) => void;
  /** Called after each step has been written (journal, fault injection). */
  afterStep?: (index: number, step: Step) => void;
}

/** Keys 0..n-1 of an ARRAY map as one buffer (host order), shared by every table fill. */
let slotKeyCache = new Uint32Array(0);
function slotKeys(n: number): Buffer {
  if (slotKeyCache.length < n) {
    slotKeyCache = new Uint32Array(n);
    for (let i = 0; i < n; i++) slotKeyCache[i] = i;
  }
  return Buffer.from(slotKeyCache.buffer, 0, n * 4);
}

function sameTable(a: Uint32Array | undefined, b: Uint32Array): boolean {
  return a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}

export class MapWriter {
  private readonly cpus = possibleCpus();

  constructor(readonly maps: DirectorMaps) {}

  /** Opens the pinned maps of a running director. */
  /** The pinned maps (`only`: just these, for a step that writes no other; a director of an
   *  older ABI may lack the others). */
  static fromPins(pinDir: string, only: readonly DirectorMap[] = DIRECTOR_MAPS): MapWriter {
    const maps: Partial<DirectorMaps> = {};
    try {
      for (const m of only) maps[m] = BpfMap.fromPin(`${pinDir}/${m}`);
    } catch (e) {
      for (const m of Object.values(maps)) m.close();
      throw e;
    }
    return new MapWriter(maps as DirectorMaps);
  }

  /** The maps of a freshly loaded object (harnesses, first attach); the object keeps them open. */
  static fromLoaded(d: LoadedDirector): MapWriter {
    return new MapWriter(Object.fromEntries(DIRECTOR_MAPS.map((m) => [m, BpfMap.fromFd(d.maps[m], { owned: false, keepAlive: d.obj })])) as DirectorMaps);
  }

  close(): void {
    for (const m of Object.values(this.maps)) m.close();
  }

  execute(steps: readonly Step[], opts: ExecuteOptions = {}): void {
    for (let i = opts.from ?? 0; i < steps.length; i++) {
      this.step(steps[i]!, opts);
      this.bumpEpoch();
      opts.afterStep?.(i, steps[i]!);
    }
  }

  /**
   * lvs_epoch + 1, after a write: the data plane's per-CPU flow cache (bpf/lvs_flowcache.h) no
   * longer uses what it cached before, so no configuration or connection-table change is missed.
   * A director of an older ABI has no lvs_epoch (and no cache).
   */
  private bumpEpoch(): void {
    const m = this.maps.lvs_epoch as BpfMap | undefined;
    if (!m) return;
    const v = m.lookup(u32(0));
    const next = Buffer.alloc(8);
    next.writeBigUInt64LE(((v ? v.readBigUInt64LE(0) : 0n) + 1n) & 0xffffffffffffffffn);
    m.update(u32(0), next);
  }

  private step(s: Step, opts: ExecuteOptions): void {
    const m = this.maps;
    switch (s.op) {
      case 'vip-filter':
        for (const [w, v] of s.words) m.lvs_vip_filter.update(u32(w), v);
        return;
      case 'settings':
        m.lvs_cfg.update(u32(0), s.value);
        return;
      case 'tx-ports':
        for (const i of s.ifindexes) m.lvs_tx_ports.update(u32(i), u32(i));
        return;
      case 'zero':
        this.zeroPerCpu(m.lvs_svc_stats, s.services, STATS.size);
        this.zeroPerCpu(m.lvs_rr_cursor, s.services, 4);
        this.zeroPerCpu(m.lvs_real_stats, s.reals, STATS.size);
        // A slot's live connection counts start at zero with it (a reused slot's old flows are
        // another generation: rescheduled, never counted here again).
        if (s.reals.length) m.lvs_real_conns.updateMany(s.reals.map(u32), s.reals.map(() => Buffer.alloc(REAL_CONNS.size)));
        return;
      case 'reals': {
        // lvs_dests first: a realserver is drawn only once a table names it, and then with its weight.
        const dests = s.writes.filter((w) => w.dest);
        if (dests.length) m.lvs_dests.updateMany(dests.map((w) => u32(w.index)), dests.map((w) => w.dest!));
        if (s.writes.length) m.lvs_reals.updateMany(s.writes.map((w) => u32(w.index)), s.writes.map((w) => w.value));
        return;
      }
      case 'tables':
        this.fillTables(s.fills, s.retire ?? [], opts);
        return;
      case 'retire':
        this.retireSpares(s.slots);
        return;
      case 'switch':
        // Each entry is one HASH update: a lookup sees the old entry or the new, whole.
        if (s.writes.length) m.lvs_services.updateMany(s.writes.map((w) => w.key), s.writes.map((w) => w.value));
        return;
      case 'remove':
        for (const x of s.services) m.lvs_services.delete(x.key);
        return;
      case 'free-tables':
        for (const slot of s.slots) m.lvs_tables.delete(u32(slot));
        return;
      case 'park-tables':
        this.parkTables(s.slots);
        return;
      case 'tombstones':
        // One HASH update each: a packet sees the service or its tombstone, whole.
        if (s.writes.length) m.lvs_services.updateMany(s.writes.map((w) => w.key), s.writes.map((w) => w.value));
        return;
      case 'gone-reals':
        if (s.writes.length) m.lvs_reals.updateMany(s.writes.map((w) => u32(w.index)), s.writes.map((w) => w.value));
        return;
      case 'clear-reals': {
        const zero = Buffer.alloc(m.lvs_reals.valueSize);
        if (s.indexes.length) m.lvs_reals.updateMany(s.indexes.map(u32), s.indexes.map(() => zero));
        // After the slot: no table names it, so nothing draws it while its weight goes.
        const zeroDest = Buffer.alloc(m.lvs_dests.valueSize);
        if (s.indexes.length) m.lvs_dests.updateMany(s.indexes.map(u32), s.indexes.map(() => zeroDest));
        return;
      }
      case 'marks':
        for (const e of s.put) m.lvs_fwmarks.update(e.key, e.value);
        for (const k of s.remove) m.lvs_fwmarks.delete(k);
        return;
      case 'l2-addrs':
        // Each lvs_l2_addrs entry is one HASH update (a frame sees the old value or the new one);
        // the full set is there before lvs_l2_ifs points past its slots to it (`more`), and stays
        // until lvs_l2_ifs no longer does. An lvs_l2_ifs value is rewritten in place: its slots
        // are placed so that MACs accepted before and after keep theirs (placeSlots).
        if (s.put.length) m.lvs_l2_addrs.updateMany(s.put.map((a) => encodeL2Key(a.ifindex, a.mac)), s.put.map(encodeL2Addr));
        if (s.ifs.length) m.lvs_l2_ifs.updateMany(s.ifs.map((e) => u32(e.ifindex)), s.ifs.map(encodeL2If));
        for (const a of s.remove) m.lvs_l2_addrs.delete(encodeL2Key(a.ifindex, a.mac));
        return;
    }
  }

  /** The spare slots (slot ^ 1) of the live `slots` pointed at their live tables, in one batch
   *  (one RCU grace period): their previous tables are freed. */
  private retireSpares(live: readonly number[]): void {
    const inners: BpfMap[] = [];
    try {
      const slots: Buffer[] = [];
      const fds: Buffer[] = [];
      this.spareWrites(live, inners, slots, fds);
      if (slots.length) this.maps.lvs_tables.updateMany(slots, fds);
    } finally {
      for (const i of inners) i.close();
    }
  }

  /** For each live slot whose spare (slot ^ 1) holds another table: the spare's key and the live
   *  table's fd (opened into `inners`, closed by the caller after the batch). A spare already
   *  holding the live table, or an empty one, is left as it is. */
  private spareWrites(retire: readonly number[], inners: BpfMap[], slots: Buffer[], fds: Buffer[]): void {
    if (!retire.length) return;
    const ids = new Map<number, number>();
    // A few slots (the services the last change switched) are looked up; many, read at once.
    if (retire.length <= 64) {
      for (const slot of retire) {
        for (const x of [slot, slot ^ 1]) {
          const v = this.maps.lvs_tables.lookup(u32(x));
          if (v) ids.set(x, v.readUInt32LE(0));
        }
      }
    } else {
      const { keys, values } = this.maps.lvs_tables.entries();
      keys.forEach((k, i) => ids.set(k.readUInt32LE(0), values[i]!.readUInt32LE(0)));
    }
    for (const slot of retire) {
      const live = ids.get(slot);
      const spare = ids.get(slot ^ 1);
      if (live === undefined || spare === undefined || spare === live) continue;
      const m = BpfMap.fromId(live);
      inners.push(m);
      slots.push(u32(slot ^ 1));
      fds.push(u32(m.fd));
    }
  }

  /**
   * Each table into a new inner array, then all of them into their lvs_tables slots in one
   * batch: every map-in-map update waits for an RCU grace period (~8 ms here), a batch waits once.
   */
  private fillTables(fills: readonly TableFill[], retire: readonly number[], opts: ExecuteOptions): void {
    const inners: BpfMap[] = [];
    try {
      const slots: Buffer[] = [];
      const fds: Buffer[] = [];
      for (const f of fills) {
        const table = f.table ?? opts.tableOf?.(f.service);
        if (!table) throw new Error(`internal: no table for ${f.service}`);
        if (opts.reuseEqualTables && sameTable(this.tableAt(f.slot), table)) continue;
        const inner = BpfMap.create({
          type: MapType.ARRAY, name: `lvs_t${f.svcId}`, keySize: 4, valueSize: 4, maxEntries: table.length, flags: MapFlag.INNER_MAP,
        });
        inners.push(inner);
        // Slot numbers and the table itself as two flat views (the data plane reads host order).
        inner.updateFlat(slotKeys(table.length), Buffer.from(table.buffer, table.byteOffset, table.byteLength));
        slots.push(u32(f.slot));
        fds.push(u32(inner.fd));
        // Written: a restore of a thousand services holds one table at a time, not all of them.
        opts.tableWritten?.(f.service);
      }
      // Previous tables of services this change leaves alone: their slots take a reference to the
      // live table (the same batch; a slot already holding it, or nothing, is left as it is).
      this.spareWrites(retire, inners, slots, fds);
      if (slots.length) this.maps.lvs_tables.updateMany(slots, fds);
    } finally {
      // The outer map holds its own references to the inner maps.
      for (const i of inners) i.close();
    }
  }

  /** Freed lvs_tables slots all pointed at one new placeholder table (PARKED_TABLE: one slot,
   *  no realserver) in one batch: one RCU grace period where deleting them waits one each (`-C` of
   *  1,000 services: 17 s). Their previous tables are freed; the placeholder goes with the last
   *  slot that names it (a later fill replaces it). */
  private parkTables(slots: readonly number[]): void {
    const park = BpfMap.create({ type: MapType.ARRAY, name: PARKED_TABLE, keySize: 4, valueSize: 4, maxEntries: 1, flags: MapFlag.INNER_MAP });
    try {
      park.update(u32(0), u32(0xffffffff));
      this.maps.lvs_tables.updateMany(slots.map(u32), slots.map(() => u32(park.fd)));
    } finally {
      park.close();
    }
  }

  /** The entries of the inner array in lvs_tables[slot], or undefined when the slot is empty (or parked). */
  tableAt(slot: number): Uint32Array | undefined {
    const idBuf = this.maps.lvs_tables.lookup(u32(slot));
    if (!idBuf) return undefined;
    const inner = BpfMap.fromId(idBuf.readUInt32LE(0));
    try {
      if (inner.name === PARKED_TABLE) return undefined;
      const { values } = inner.entries();
      return Uint32Array.from(values, (v) => v.readUInt32LE(0));
    } finally {
      inner.close();
    }
  }

  private zeroPerCpu(map: BpfMap, indexes: readonly number[], size: number): void {
    if (!indexes.length) return;
    const zero = Buffer.alloc(Math.ceil(size / 8) * 8 * this.cpus);
    map.updateMany(indexes.map(u32), indexes.map(() => zero));
  }

  // ---- dynamic maps: typed writes outside plans ------------------------------------------

  /** ipvsadm -Z: zero service and realserver counters (indexes into lvs_svc_stats / lvs_real_stats). */
  zeroStats(services: readonly number[], reals: readonly number[]): void {
    this.zeroPerCpu(this.maps.lvs_svc_stats, services, STATS.size);
    this.zeroPerCpu(this.maps.lvs_real_stats, reals, STATS.size);
  }

  /** Zeroes the named counters (indexes into lvs_counters). */
  zeroCounters(indexes: readonly number[]): void {
    this.zeroPerCpu(this.maps.lvs_counters, indexes, 8);
  }

  /** The same rr cursor value on every CPU. */
  setRrCursor(svcId: number, value: number): void {
    const v = Buffer.alloc(8 * this.cpus);
    for (let c = 0; c < this.cpus; c++) v.writeUInt32LE(value >>> 0, 8 * c);
    this.maps.lvs_rr_cursor.update(u32(svcId), v);
  }

  /** rr cursors back to the start of their sequence. */
  resetRrCursors(svcIds: readonly number[]): void {
    this.zeroPerCpu(this.maps.lvs_rr_cursor, svcIds, 4);
  }

  /** Inserts or replaces an entry of the connection, persistence or fragment table. */
  putEntry(map: DynamicMap, key: Buffer, value: Buffer): void {
    this.maps[map].update(key, value);
    this.bumpEpoch();
  }

  /** Inserts or replaces many entries of a dynamic map in batch syscalls (connection sync's
   *  backup side, src/sync/insert.ts). */
  putEntries(map: DynamicMap, keys: readonly Buffer[], values: readonly Buffer[]): void {
    if (!keys.length) return;
    this.maps[map].updateMany([...keys], [...values]);
    // A synced entry may replace one the flow cache holds (another realserver): not used after this.
    this.bumpEpoch();
  }

  deleteEntries(map: DynamicMap, keys: readonly Buffer[]): void {
    if (keys.length) this.maps[map].deleteMany([...keys]);
    this.bumpEpoch();
  }

  /** Empties a dynamic map (or every service entry: harnesses start each case from nothing). */
  clear(map: DynamicMap | 'lvs_services' | 'lvs_fwmarks'): void {
    const { keys } = this.maps[map].entries();
    if (keys.length) this.maps[map].deleteMany(keys);
    this.bumpEpoch();
  }

  /** Slots of lvs_synrecv (SYN_RECV connections, bpf/lvs_synrecv.h) written as given: harnesses
   *  set up a case's state; an all-zero value clears a slot. Slot = bucket * LVS_SYNRECV_WAYS +
   *  way: the caller picks the way (test/model/synrecv.ts synRecvBucket gives the bucket). */
  putSynRecv(slots: readonly number[], values: readonly Buffer[]): void {
    if (slots.length) this.maps.lvs_synrecv.updateMany(slots.map(u32), [...values]);
    this.bumpEpoch();
  }

  /** Every slot of lvs_synrecv cleared (one batch syscall). */
  clearSynRecv(): void {
    const m = this.maps.lvs_synrecv;
    m.updateFlat(slotKeys(m.maxEntries), Buffer.alloc(m.valueSize * m.maxEntries));
    this.bumpEpoch();
  }

  /**
   * Live connection counts set to a recount (DirectorReader.connCountFixes): only the slots whose
   * counts differ. A connection the data plane binds or unbinds between the recount and this write
   * is lost until the next recount; the recount runs every LVS_LC_RECONCILE_S under `run`.
   */
  setConnCounts(fixes: readonly { index: number; value: Buffer }[]): void {
    if (fixes.length) this.maps.lvs_real_conns.updateMany(fixes.map((f) => u32(f.index)), fixes.map((f) => f.value));
  }

  /** Egress interfaces no longer allowed (detach). */
  removeTxPorts(ifindexes: readonly number[]): void {
    for (const i of ifindexes) this.maps.lvs_tx_ports.delete(u32(i));
  }
}
