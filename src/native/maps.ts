/**
 * BPF maps (native/maps.cc): one BpfMap per fd, with its info read once so buffer sizes and
 * per-CPU slots are known; lookups, updates, batch dumps and pins.
 */
import { readFileSync } from 'node:fs';
import { loadNative } from './load.js';
import { call } from './common.js';
import { possibleCpus } from './fds.js';
import { PER_CPU_MAP_TYPES, UpdateFlag } from './constants.js';
import type { NativeErrorContext } from '../errors.js';
import type { MapCreateOptionsRaw, MapInfo } from './binding.js';

/** Bytes of one per-CPU slot: values are 8-byte aligned per CPU. */
export function perCpuStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

/** Kernel memory charged to the map behind `fd` (fdinfo memlock); 0 when unreadable. */
export function memlockOf(fd: number): number {
  try {
    const m = /^memlock:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export interface MapCreateOptions extends MapCreateOptionsRaw {}

export interface DumpOptions {
  /** Elements per batch syscall (default 256). */
  batchSize?: number;
}

/** A map dump split into per-element Buffers (views into two shared buffers). */
export interface MapEntries {
  keys: Buffer[];
  values: Buffer[];
  /** False when the kernel had no batch op for this map type and keys were walked one by one. */
  batched: boolean;
}

export function splitDump(d: { count: number; keySize: number; valueSize: number; keys: Buffer; values: Buffer; batched: boolean }): MapEntries {
  const keys: Buffer[] = new Array(d.count);
  const values: Buffer[] = new Array(d.count);
  for (let i = 0; i < d.count; i++) {
    keys[i] = d.keys.subarray(i * d.keySize, (i + 1) * d.keySize);
    values[i] = d.values.subarray(i * d.valueSize, (i + 1) * d.valueSize);
  }
  return { keys, values, batched: d.batched };
}

/**
 * A map fd with its info. Maps that come from a BpfObject are borrowed (closing the object
 * closes them); maps created, fetched by id or from a pin are owned and closed by close().
 */
export class BpfMap {
  readonly fd: number;
  readonly info: MapInfo;
  /** Whether close() closes the fd. */
  readonly owned: boolean;
  private closed = false;
  /** For borrowed fds: the owner, kept reachable so the GC cannot close the fd under us. */
  private readonly keepAlive: unknown;

  private constructor(fd: number, info: MapInfo, owned: boolean, keepAlive: unknown) {
    this.fd = fd;
    this.info = info;
    this.owned = owned;
    this.keepAlive = keepAlive;
  }

  /**
   * Wraps an fd. With owned=true (default) the BpfMap closes it. A borrowed fd's owner can be
   * passed as keepAlive so it stays reachable as long as this BpfMap.
   */
  static fromFd(fd: number, opts: { owned?: boolean; keepAlive?: unknown } = {}): BpfMap {
    const info = call({ action: `read map info of fd ${fd}` }, (n) => n.mapInfo(fd));
    return new BpfMap(fd, info, opts.owned ?? true, opts.keepAlive);
  }

  static create(opts: MapCreateOptions): BpfMap {
    const fd = call({ action: `create map ${opts.name ?? ''}`.trim() }, (n) => n.mapCreate(opts));
    return BpfMap.adopt(fd);
  }

  static fromId(id: number): BpfMap {
    return BpfMap.adopt(call({ action: `open map id ${id}` }, (n) => n.mapFdById(id)));
  }

  /** Opens a pinned map (bpffs path). */
  static fromPin(path: string): BpfMap {
    return BpfMap.adopt(call({ action: `open pinned map ${path}`, path }, (n) => n.objGet(path)));
  }

  /** Wraps a new fd we own; closes it if reading its info fails. */
  private static adopt(fd: number): BpfMap {
    try {
      return BpfMap.fromFd(fd, { owned: true });
    } catch (e) {
      loadNative().closeFd(fd);
      throw e;
    }
  }

  get name(): string {
    return this.info.name;
  }
  get type(): number {
    return this.info.type;
  }
  get keySize(): number {
    return this.info.keySize;
  }
  get valueSize(): number {
    return this.info.valueSize;
  }
  get maxEntries(): number {
    return this.info.maxEntries;
  }
  /** Kernel memory charged to the map now (fdinfo memlock, what bpftool shows as bytes_memlock); 0 when unreadable. */
  get memlock(): number {
    return memlockOf(this.fd);
  }
  get perCpu(): boolean {
    return PER_CPU_MAP_TYPES.has(this.info.type);
  }
  /** Bytes a lookup returns: valueSize, or one 8-byte-aligned slot per possible CPU. */
  get valueBytes(): number {
    return this.perCpu ? perCpuStride(this.info.valueSize) * possibleCpus() : this.info.valueSize;
  }

  /** Error context naming this map, for calls on its fd. */
  ctx(what: string): NativeErrorContext {
    return { action: `${what} in map ${this.info.name || this.fd}` };
  }

  /** The fd, while this BpfMap is open (throws once closed or invalidated). */
  liveFd(): number {
    if (this.closed) throw new Error(`map ${this.info.name || this.fd} is closed`);
    return this.fd;
  }

  /** The value, or null when the key is absent. Per-CPU maps: all slots in one Buffer. */
  lookup(key: Buffer): Buffer | null {
    const fd = this.liveFd();
    return call(this.ctx('lookup'), (n) => n.mapLookup(fd, key));
  }

  /** Per-CPU maps: one Buffer of valueSize bytes per possible CPU. */
  lookupPerCpu(key: Buffer): Buffer[] | null {
    const v = this.lookup(key);
    return v === null ? null : this.splitPerCpu(v);
  }

  /** Splits a per-CPU value (as returned by lookup or entries) into per-CPU slots. */
  splitPerCpu(value: Buffer): Buffer[] {
    const stride = perCpuStride(this.info.valueSize);
    const out: Buffer[] = [];
    for (let off = 0; off + stride <= value.length; off += stride) out.push(value.subarray(off, off + this.info.valueSize));
    return out;
  }

  update(key: Buffer, value: Buffer, flags: number = UpdateFlag.ANY): void {
    const fd = this.liveFd();
    call(this.ctx('update'), (n) => n.mapUpdate(fd, key, value, flags));
  }

  /** Per-CPU update: one Buffer per possible CPU, or one Buffer copied to every CPU. */
  updatePerCpu(key: Buffer, values: Buffer[] | Buffer, flags: number = UpdateFlag.ANY): void {
    const cpus = possibleCpus();
    const stride = perCpuStride(this.info.valueSize);
    const all = Buffer.alloc(stride * cpus);
    for (let c = 0; c < cpus; c++) {
      const v = Array.isArray(values) ? values[c] : values;
      if (v === undefined) throw new RangeError(`updatePerCpu: ${cpus} values needed, got ${(values as Buffer[]).length}`);
      v.copy(all, c * stride, 0, this.info.valueSize);
    }
    this.update(key, all, flags);
  }

  /** Returns false when the key was absent. */
  delete(key: Buffer): boolean {
    const fd = this.liveFd();
    return call(this.ctx('delete'), (n) => n.mapDelete(fd, key));
  }

  /** Key after `key` (first key for null); null at the end. */
  nextKey(key: Buffer | null): Buffer | null {
    const fd = this.liveFd();
    return call(this.ctx('iterate'), (n) => n.mapNextKey(fd, key));
  }

  /** Walks keys one syscall each (not a snapshot: a concurrently deleted key may restart it). */
  *keys(): Generator<Buffer> {
    let k = this.nextKey(null);
    for (let seen = 0; k !== null && seen < this.info.maxEntries; seen++) {
      yield k;
      k = this.nextKey(k);
    }
  }

  /** All elements, read with batch syscalls when the map type has them. */
  entries(opts: DumpOptions = {}): MapEntries {
    const fd = this.liveFd();
    return splitDump(call(this.ctx('dump'), (n) => n.mapLookupBatch(fd, opts)));
  }

  /**
   * Writes elements given as contiguous keys and values (keySize / valueSize bytes each, in the
   * same order): one batch syscall and no Buffer per element (a lookup table of 65,537 slots is
   * two views, not 131,074 small Buffers to collect). Returns how many were written.
   */
  updateFlat(keys: Buffer, values: Buffer, flags: number = UpdateFlag.ANY): number {
    const fd = this.liveFd();
    return call(this.ctx('update'), (n) => n.mapUpdateBatch(fd, keys, values, flags)).count;
  }

  /** Writes many elements (batch when supported); returns how many were written. */
  updateMany(keys: Buffer[], values: Buffer[], flags: number = UpdateFlag.ANY): number {
    const fd = this.liveFd();
    if (keys.length !== values.length) throw new RangeError('updateMany: keys and values differ in count');
    const k = Buffer.concat(keys);
    const v = Buffer.concat(values);
    return call(this.ctx('update'), (n) => n.mapUpdateBatch(fd, k, v, flags)).count;
  }

  /** Deletes the keys that exist; returns how many were deleted. */
  deleteMany(keys: Buffer[]): number {
    const fd = this.liveFd();
    const k = Buffer.concat(keys);
    return call(this.ctx('delete'), (n) => n.mapDeleteBatch(fd, k)).count;
  }

  pin(path: string): void {
    const fd = this.liveFd();
    call({ action: `pin map ${this.info.name} at ${path}`, path }, (n) => n.objPin(fd, path));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) loadNative().closeFd(this.fd);
  }

  /** Marks a borrowed map unusable once its owner (a BpfObject) has closed the fd. */
  invalidate(): void {
    this.closed = true;
  }
}
