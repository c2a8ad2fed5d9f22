/**
 * Whole-state access to a loaded lvs_director for the differential fuzzer: set and dump the
 * connection, persistence and fragment maps, write the static maps in bulk, read per-CPU
 * counters, stats and rr cursors (summed or per CPU), and run frames with the monotonic-clock
 * window each run happened in (bpf_ktime_get_ns() is CLOCK_MONOTONIC, as process.hrtime).
 *
 * The fuzzer needs states no valid configuration produces (short tables, dangling slots, any
 * rr cursor), so it hand-builds plan steps, with values from its own independent encoders, and
 * the production map writer (src/director/writer.ts) writes them: no map is written here.
 * test/lib/director.ts is the packet tests' harness; this one trades convenience for syscalls.
 */
import { testRun, possibleCpus, RingReader, type BpfMap } from '../../src/native/index.js';
import { loadDirector, type DirectorSizes, type Knobs, type LoadedDirector } from '../../src/dataplane/loader.js';
import { COUNTERS } from '../../src/abi/generated.js';
import { MapWriter, type DynamicMap } from '../../src/director/writer.js';
import type { Step } from '../../src/director/plan.js';
import { syncAcceptedLocked } from '../../src/director/lifecycle.js';
import type { AcceptedMac } from '../../src/dataplane/l2addrs.js';

export type { DynamicMap };
export interface StatsSum { packets: number; bytes: number; conns: number; outPackets: number; outBytes: number }
export interface RunResult { action: number; out: Buffer; lo: bigint; hi: bigint }

// lvs_synrecv: 16 slots, 4 buckets of 4 ways, so that the fuzzer fills buckets and evicts.
export const FUZZ_SIZES: DirectorSizes = { maxServices: 16, maxReals: 64, maxConns: 4096, maxPersist: 1024, maxFrags: 1024, maxStrays: 1024, maxSyncRing: 65536, maxSynRecv: 16, maxFlowcache: 16384, maxCaptureRing: 131072 };

export class DirectorState {
  readonly cpus: number = possibleCpus();
  private readonly writer: MapWriter;
  /** lvs_tables slots holding a table. */
  private tables = new Set<number>();
  private txPorts: number[] = [];
  private vipFilterWords: Buffer | null = null;

  private constructor(private readonly d: LoadedDirector, readonly sizes: DirectorSizes, readonly knobs: Knobs) {
    this.writer = MapWriter.fromLoaded(d);
  }

  get progFd(): number {
    return this.d.progFd;
  }

  /** `synrecvKey`: lvs_synrecv's bucket key (default: a new one, as every load). */
  static async load(knobs: Knobs, sizes: DirectorSizes = FUZZ_SIZES, path?: string, synrecvKey?: Buffer): Promise<DirectorState> {
    return new DirectorState(await loadDirector({ ...(path ? { path } : {}), knobs, sizes, ...(synrecvKey ? { synrecvKey } : {}) }), sizes, knobs);
  }

  private ring?: RingReader;

  /** The records waiting in lvs_sync_events (connection sync events), consumed. */
  syncEvents(): Buffer[] {
    this.ring ??= new RingReader(this.writer.maps.lvs_sync_events.fd);
    return this.ring.consume(1 << 20);
  }

  close(): void {
    this.ring?.close();
    // Closing the object frees lvs_tables and its inner arrays; deleting slot by slot would wait
    // for an RCU grace period each.
    this.d.obj.close();
  }

  private exec(step: Step, reuseEqualTables = false): void {
    this.writer.execute([step], { reuseEqualTables });
  }

  /** One BPF_PROG_TEST_RUN; lo/hi bracket the run on the monotonic clock. */
  run(frame: Buffer): RunResult {
    const lo = process.hrtime.bigint();
    const r = testRun(this.d.progFd, frame, { dataSizeOut: frame.length + 256 });
    const hi = process.hrtime.bigint();
    return { action: r.retval, out: r.data, lo, hi };
  }

  // ---- static maps ---------------------------------------------------------------------------

  /** The whole lvs_vip_filter array (LVS_VIP_FILTER_WORDS u64); written only where it changed. */
  setVipFilter(words: Buffer): void {
    const prev = this.vipFilterWords;
    const changed: [number, Buffer][] = [];
    for (let i = 0; i < words.length / 8; i++) {
      if (!prev || prev.compare(words, i * 8, i * 8 + 8, i * 8, i * 8 + 8) !== 0) changed.push([i, Buffer.from(words.subarray(i * 8, i * 8 + 8))]);
    }
    if (changed.length) this.exec({ op: 'vip-filter', words: changed });
    this.vipFilterWords = Buffer.from(words);
  }

  setCfg(value: Buffer): void {
    this.exec({ op: 'settings', value });
  }

  setService(key: Buffer, value: Buffer): void {
    this.exec({ op: 'switch', writes: [{ service: key.toString('hex'), key, value }] });
  }

  /** lvs_fwmarks holds exactly these entries (firewall-mark classification). */
  setMarks(entries: readonly { key: Buffer; value: Buffer }[]): void {
    this.writer.clear('lvs_fwmarks');
    if (entries.length) this.exec({ op: 'marks', put: [...entries], remove: [] });
  }

  clearServices(): void {
    this.writer.clear('lvs_services');
  }

  /** lvs_tables[slot] holds an inner array with exactly these entries. Every lvs_tables write
   *  waits for an RCU grace period (~14 ms): a slot that already holds these entries is kept. */
  setTable(slot: number, entries: Uint32Array): void {
    this.exec({ op: 'tables', fills: [{ service: `slot ${slot}`, svcId: slot >> 1, slot, table: entries }] }, true);
    this.tables.add(slot);
  }

  /** Empties lvs_tables[slot] (a service pointing there finds no table). */
  deleteTable(slot: number): void {
    if (!this.tables.has(slot)) return;
    this.exec({ op: 'free-tables', slots: [slot] });
    this.tables.delete(slot);
  }

  clearTables(): void {
    if (this.tables.size) this.exec({ op: 'free-tables', slots: [...this.tables] });
    this.tables.clear();
  }

  /** Every lvs_reals slot at once: the given ones, all others zero (deleted). */
  /** Every realserver slot, with its lvs_dests value (`dests`; absent: all zero). */
  setReals(values: Map<number, Buffer>, dests: Map<number, Buffer> = new Map()): void {
    const zero = Buffer.alloc(this.writer.maps.lvs_reals.valueSize);
    const zeroDest = Buffer.alloc(this.writer.maps.lvs_dests.valueSize);
    const writes = Array.from({ length: this.sizes.maxReals }, (_, i) => ({ index: i, value: values.get(i) ?? zero, dest: dests.get(i) ?? zeroDest }));
    this.exec({ op: 'reals', writes });
  }

  /** Every slot's live connection counts (lvs_real_conns; absent: all zero). */
  setCounts(values: Map<number, Buffer>): void {
    const zero = Buffer.alloc(this.writer.maps.lvs_real_conns.valueSize);
    this.writer.setConnCounts(Array.from({ length: this.sizes.maxReals }, (_, i) => ({ index: i, value: values.get(i) ?? zero })));
  }

  /** lvs_real_conns by index (raw values). */
  counts(): Buffer[] {
    const { keys, values } = this.writer.maps.lvs_real_conns.entries();
    const out: Buffer[] = [];
    keys.forEach((k, i) => { out[k.readUInt32LE(0)] = values[i]!; });
    return out;
  }

  /** The accepted MACs (lvs_l2_addrs, lvs_l2_ifs) exactly as given (MACs as hex): what is not listed is removed. */
  setAccepted(list: readonly { ifindex: number; mac: string; egress: string }[]): void {
    const colon = (h: string) => h.match(/../g)!.join(':');
    const want: AcceptedMac[] = list.map((a) => ({ ifindex: a.ifindex, mac: colon(a.mac), egress: colon(a.egress), kind: 'own' }));
    syncAcceptedLocked(this.writer, want);
  }

  setTxPorts(ifindexes: Iterable<number>): void {
    this.writer.removeTxPorts(this.txPorts);
    this.txPorts = [...ifindexes];
    if (this.txPorts.length) this.exec({ op: 'tx-ports', ifindexes: this.txPorts });
  }

  /** The same rr cursor value on every CPU. */
  setCursor(id: number, value: number): void {
    this.writer.setRrCursor(id, value);
  }

  /** rr cursors: [service id][cpu]. */
  cursors(): number[][] {
    const map = this.writer.maps.lvs_rr_cursor;
    const { keys, values } = map.entries();
    const out: number[][] = [];
    keys.forEach((k, i) => {
      out[k.readUInt32LE(0)] = map.splitPerCpu(values[i]!).map((b) => b.readUInt32LE(0));
    });
    return out;
  }

  resetCursors(): void {
    this.writer.resetRrCursors(Array.from({ length: this.sizes.maxServices }, (_, i) => i));
  }

  // ---- connection, persistence and fragment maps -------------------------------------------

  /** lvs_synrecv's slots that are not all zero, by slot. */
  dumpSynRecv(): Map<number, Buffer> {
    const { keys, values } = this.writer.maps.lvs_synrecv.entries();
    const out = new Map<number, Buffer>();
    keys.forEach((k, i) => { if (values[i]!.some((b) => b !== 0)) out.set(k.readUInt32LE(0), values[i]!); });
    return out;
  }

  putSynRecv(slots: Map<number, Buffer>): void {
    this.writer.putSynRecv([...slots.keys()], [...slots.values()]);
  }

  clearSynRecv(): void {
    this.writer.clearSynRecv();
  }

  dump(m: DynamicMap): Map<string, Buffer> {
    const { keys, values } = this.writer.maps[m].entries();
    return new Map(keys.map((k, i) => [k.toString('hex'), values[i]!]));
  }

  put(m: DynamicMap, keyHex: string, value: Buffer): void {
    this.writer.putEntry(m, Buffer.from(keyHex, 'hex'), value);
  }

  clear(m: DynamicMap | 'lvs_services'): void {
    this.writer.clear(m);
  }

  // ---- per-CPU counters and stats (summed over CPUs) ---------------------------------------

  private sums(map: BpfMap, each: (b: Buffer) => number[]): Map<number, number[]> {
    const { keys, values } = map.entries();
    const out = new Map<number, number[]>();
    keys.forEach((k, i) => {
      const total: number[] = [];
      for (const b of map.splitPerCpu(values[i]!)) each(b).forEach((v, j) => { total[j] = (total[j] ?? 0) + v; });
      out.set(k.readUInt32LE(0), total);
    });
    return out;
  }

  counters(): number[] {
    const out = new Array<number>(COUNTERS.length).fill(0);
    for (const [i, [v]] of this.sums(this.writer.maps.lvs_counters, (b) => [Number(b.readBigUInt64LE(0))])) out[i] = v ?? 0;
    return out;
  }

  stats(m: 'lvs_svc_stats' | 'lvs_real_stats'): StatsSum[] {
    const out: StatsSum[] = [];
    const read = (b: Buffer) => [0, 8, 16, 24, 32].map((o) => Number(b.readBigUInt64LE(o)));
    for (const [i, [packets, bytes, conns, outPackets, outBytes]] of this.sums(this.writer.maps[m], read)) {
      out[i] = { packets: packets ?? 0, bytes: bytes ?? 0, conns: conns ?? 0, outPackets: outPackets ?? 0, outBytes: outBytes ?? 0 };
    }
    return out;
  }
}
