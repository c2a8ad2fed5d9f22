/**
 * Whole-state access to a loaded lvs_director for the differential fuzzer: set and dump the
 * connection, persistence and fragment maps, write the static maps in bulk, read per-CPU
 * counters, stats and rr cursors (summed or per CPU), and run frames with the monotonic-clock
 * window each run happened in (bpf_ktime_get_ns() is CLOCK_MONOTONIC, as process.hrtime).
 * test/lib/director.ts is the packet tests' harness; this one trades convenience for syscalls.
 */
import { native as rawNative } from '../../src/native/testing.js';
import { loadDirector, type DirectorMap, type DirectorSizes, type Knobs } from '../../src/dataplane/loader.js';
import { REAL, STATS } from '../../src/abi/layout.js';
import { COUNTERS } from '../../src/abi/generated.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const native: any = rawNative();
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_F_INNER_MAP = 0x1000;

export type DynamicMap = 'lvs_conns' | 'lvs_persist' | 'lvs_frags';
export interface StatsSum { packets: number; bytes: number; conns: number }
export interface RunResult { action: number; out: Buffer; lo: bigint; hi: bigint }

export const FUZZ_SIZES: DirectorSizes = { maxServices: 16, maxReals: 64, maxConns: 4096, maxPersist: 1024, maxFrags: 1024 };

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function indexKeys(n: number): Buffer {
  const b = Buffer.alloc(4 * n);
  for (let i = 0; i < n; i++) b.writeUInt32LE(i, 4 * i);
  return b;
}

export class DirectorState {
  readonly cpus: number = native.possibleCpus();
  private inner = new Map<number, { fd: number; size: number }>();
  private txPorts = new Set<number>();

  private constructor(
    private readonly obj: { close(): void },
    readonly progFd: number,
    private readonly fds: Record<DirectorMap, number>,
    readonly sizes: DirectorSizes,
    readonly knobs: Knobs,
  ) {}

  static async load(knobs: Knobs, sizes: DirectorSizes = FUZZ_SIZES, path?: string): Promise<DirectorState> {
    const d = await loadDirector({ ...(path ? { path } : {}), knobs, sizes });
    const s = new DirectorState(d.obj, d.progFd, d.maps, sizes, knobs);
    try {
      s.vipFilterFd = d.obj.mapFd('lvs_vip_filter');
    } catch {
      s.vipFilterFd = -1; // an object without the VIP filter
    }
    return s;
  }

  private vipFilterFd = -1;
  private vipFilterWords: Buffer | null = null;

  /** The whole lvs_vip_filter array (LVS_VIP_FILTER_WORDS u64); written only where it changed. */
  setVipFilter(words: Buffer): void {
    if (this.vipFilterFd < 0) throw new Error('this object has no lvs_vip_filter map');
    const n = words.length / 8;
    const prev = this.vipFilterWords;
    if (!prev) {
      native.mapUpdateBatch(this.vipFilterFd, indexKeys(n), words);
    } else {
      for (let i = 0; i < n; i++) {
        if (prev.compare(words, i * 8, i * 8 + 8, i * 8, i * 8 + 8) !== 0) native.mapUpdate(this.vipFilterFd, u32(i), words.subarray(i * 8, i * 8 + 8), 0);
      }
    }
    this.vipFilterWords = Buffer.from(words);
  }

  close(): void {
    // Closing the object frees lvs_tables and its inner arrays; deleting slot by slot would wait
    // for an RCU grace period each.
    for (const { fd } of this.inner.values()) native.closeFd(fd);
    this.inner.clear();
    this.obj.close();
  }

  /** One BPF_PROG_TEST_RUN; lo/hi bracket the run on the monotonic clock. */
  run(frame: Buffer): RunResult {
    const lo = process.hrtime.bigint();
    const r = native.progTestRun(this.progFd, frame, { dataSizeOut: frame.length + 256 });
    const hi = process.hrtime.bigint();
    return { action: r.retval, out: r.data, lo, hi };
  }

  private stride(size: number): number {
    return Math.ceil(size / 8) * 8;
  }

  // ---- static maps ---------------------------------------------------------------------------

  setCfg(value: Buffer): void {
    native.mapUpdate(this.fds.lvs_cfg, u32(0), value, 0);
  }

  setService(key: Buffer, value: Buffer): void {
    native.mapUpdate(this.fds.lvs_services, key, value, 0);
  }

  clearServices(): void {
    this.clear('lvs_services');
  }

  /** lvs_tables[slot] holds an inner array with exactly these entries. Every lvs_tables write
   *  waits for an RCU grace period (~14 ms), so an installed inner array of the same size is
   *  rewritten in place instead of replaced. */
  setTable(slot: number, entries: Uint32Array): void {
    const values = Buffer.from(entries.buffer, entries.byteOffset, entries.byteLength);
    const cur = this.inner.get(slot);
    if (cur && cur.size === entries.length) {
      native.mapUpdateBatch(cur.fd, indexKeys(entries.length), values);
      return;
    }
    const fd = native.mapCreate({ type: BPF_MAP_TYPE_ARRAY, name: `lvs_fz${slot}`, keySize: 4, valueSize: 4, maxEntries: entries.length, flags: BPF_F_INNER_MAP });
    native.mapUpdateBatch(fd, indexKeys(entries.length), values);
    native.mapUpdate(this.fds.lvs_tables, u32(slot), u32(fd), 0);
    if (cur) native.closeFd(cur.fd);
    this.inner.set(slot, { fd, size: entries.length });
  }

  /** Empties lvs_tables[slot] (a service pointing there finds no table). */
  deleteTable(slot: number): void {
    const cur = this.inner.get(slot);
    if (!cur) return;
    native.mapDelete(this.fds.lvs_tables, u32(slot));
    native.closeFd(cur.fd);
    this.inner.delete(slot);
  }

  clearTables(): void {
    for (const slot of [...this.inner.keys()]) this.deleteTable(slot);
  }

  /** Every lvs_reals slot at once: the given ones, all others zero (deleted). */
  setReals(values: Map<number, Buffer>): void {
    const n = this.sizes.maxReals;
    const all = Buffer.alloc(n * REAL.size);
    for (const [i, v] of values) if (i < n) v.copy(all, i * REAL.size);
    native.mapUpdateBatch(this.fds.lvs_reals, indexKeys(n), all);
  }

  setTxPorts(ifindexes: Iterable<number>): void {
    for (const i of this.txPorts) native.mapDelete(this.fds.lvs_tx_ports, u32(i));
    this.txPorts.clear();
    for (const i of ifindexes) {
      native.mapUpdate(this.fds.lvs_tx_ports, u32(i), u32(i), 0);
      this.txPorts.add(i);
    }
  }

  /** The same rr cursor value on every CPU. */
  setCursor(id: number, value: number): void {
    const v = Buffer.alloc(8 * this.cpus);
    for (let c = 0; c < this.cpus; c++) v.writeUInt32LE(value >>> 0, 8 * c);
    native.mapUpdate(this.fds.lvs_rr_cursor, u32(id), v, 0);
  }

  /** rr cursors: [service id][cpu]. */
  cursors(): number[][] {
    const d = native.mapLookupBatch(this.fds.lvs_rr_cursor);
    const out: number[][] = [];
    for (let i = 0; i < d.count; i++) {
      const id = d.keys.readUInt32LE(i * 4);
      out[id] = Array.from({ length: this.cpus }, (_, c) => d.values.readUInt32LE(i * d.valueSize + 8 * c));
    }
    return out;
  }

  resetCursors(): void {
    const n = this.sizes.maxServices;
    native.mapUpdateBatch(this.fds.lvs_rr_cursor, indexKeys(n), Buffer.alloc(n * 8 * this.cpus));
  }

  // ---- connection, persistence and fragment maps -------------------------------------------

  dump(m: DynamicMap): Map<string, Buffer> {
    const d = native.mapLookupBatch(this.fds[m]);
    const out = new Map<string, Buffer>();
    for (let i = 0; i < d.count; i++) {
      out.set(d.keys.toString('hex', i * d.keySize, (i + 1) * d.keySize), d.values.subarray(i * d.valueSize, (i + 1) * d.valueSize));
    }
    return out;
  }

  put(m: DynamicMap, keyHex: string, value: Buffer): void {
    native.mapUpdate(this.fds[m], Buffer.from(keyHex, 'hex'), value, 0);
  }

  clear(m: DynamicMap | 'lvs_services'): void {
    const d = native.mapLookupBatch(this.fds[m]);
    if (d.count) native.mapDeleteBatch(this.fds[m], d.keys);
  }

  // ---- per-CPU counters and stats (summed over CPUs) ---------------------------------------

  counters(): number[] {
    const d = native.mapLookupBatch(this.fds.lvs_counters);
    const out = new Array<number>(COUNTERS.length).fill(0);
    for (let i = 0; i < d.count; i++) {
      const idx = d.keys.readUInt32LE(i * 4);
      let s = 0;
      for (let c = 0; c < this.cpus; c++) s += Number(d.values.readBigUInt64LE(i * d.valueSize + 8 * c));
      out[idx] = s;
    }
    return out;
  }

  stats(m: 'lvs_svc_stats' | 'lvs_real_stats'): StatsSum[] {
    const d = native.mapLookupBatch(this.fds[m]);
    const stride = this.stride(STATS.size);
    const out: StatsSum[] = [];
    for (let i = 0; i < d.count; i++) {
      const idx = d.keys.readUInt32LE(i * 4);
      const s = { packets: 0, bytes: 0, conns: 0 };
      for (let c = 0; c < this.cpus; c++) {
        const at = i * d.valueSize + c * stride;
        s.packets += Number(d.values.readBigUInt64LE(at));
        s.bytes += Number(d.values.readBigUInt64LE(at + 8));
        s.conns += Number(d.values.readBigUInt64LE(at + 16));
      }
      out[idx] = s;
    }
    return out;
  }
}
