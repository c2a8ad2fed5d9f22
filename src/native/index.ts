/**
 * Typed facade over the native libbpf binding: what the rest of the project uses.
 *
 * Every call translates raw native errors into the typed errors of src/errors.ts, so callers
 * catch PermissionError, VerifierError, InterfaceNotFoundError... rather than errno strings.
 * Policy (what to load, when to reuse maps, which mode to try) belongs to callers; this file
 * only makes the kernel objects convenient and safe to hold (fds closed once, sizes known).
 */
import { loadNative } from './load.js';
import { PER_CPU_MAP_TYPES, UpdateFlag } from './constants.js';
import { translateNativeError, NotAttachedError, type NativeErrorContext } from '../errors.js';
import type {
  BtfEnumValue,
  BtfStruct,
  LinkInfo,
  MapCreateOptionsRaw,
  MapDef,
  MapInfo,
  NativeBinding,
  NativeBpfObject,
  ProgInfo,
  TestRunOptionsRaw,
  TestRunResultRaw,
  XdpQueryRaw,
} from './binding.js';

export * from './constants.js';
export type {
  BtfEnumValue,
  BtfMember,
  BtfStruct,
  LinkInfo,
  MapDef,
  MapInfo,
  NativeBinding,
  NativeBpfObject,
  NativeError,
  ProgInfo,
} from './binding.js';
export { loadNative } from './load.js';

/** The raw binding, for the rare caller that needs it (tests, tools). */
export function native(): NativeBinding {
  return loadNative();
}

/** Bad arguments (TypeError/RangeError) are caller bugs and pass through; the rest is typed. */
function translate(e: unknown, ctx: NativeErrorContext): unknown {
  return e instanceof TypeError || e instanceof RangeError ? e : translateNativeError(e, ctx);
}

/** Runs a native call, turning its failure into a typed LvsError. */
function call<T>(ctx: NativeErrorContext, fn: (n: NativeBinding) => T): T {
  const n = loadNative();
  try {
    return fn(n);
  } catch (e) {
    throw translate(e, ctx);
  }
}

async function callAsync<T>(ctx: NativeErrorContext, fn: (n: NativeBinding) => Promise<T>): Promise<T> {
  const n = loadNative();
  try {
    return await fn(n);
  } catch (e) {
    throw translate(e, ctx);
  }
}

/** Number of possible CPUs: the number of slots in a per-CPU map value. */
export function possibleCpus(): number {
  return call({ action: 'count possible CPUs' }, (n) => n.possibleCpus());
}

/** Bytes of one per-CPU slot: values are 8-byte aligned per CPU. */
export function perCpuStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

// ---- maps -----------------------------------------------------------------------------------

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

function splitDump(d: { count: number; keySize: number; valueSize: number; keys: Buffer; values: Buffer; batched: boolean }): MapEntries {
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
  get perCpu(): boolean {
    return PER_CPU_MAP_TYPES.has(this.info.type);
  }
  /** Bytes a lookup returns: valueSize, or one 8-byte-aligned slot per possible CPU. */
  get valueBytes(): number {
    return this.perCpu ? perCpuStride(this.info.valueSize) * possibleCpus() : this.info.valueSize;
  }

  private ctx(what: string): NativeErrorContext {
    return { action: `${what} in map ${this.info.name || this.fd}` };
  }

  private liveFd(): number {
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

  /** entries() on a worker thread, for big maps. */
  async entriesAsync(opts: DumpOptions = {}): Promise<MapEntries> {
    const fd = this.liveFd();
    return splitDump(await callAsync(this.ctx('dump'), (n) => n.mapLookupBatchAsync(fd, opts)));
  }

  /** Writes many elements (batch when supported); returns how many were written. */
  updateMany(keys: Buffer[], values: Buffer[], flags: number = UpdateFlag.ANY): number {
    const fd = this.liveFd();
    if (keys.length !== values.length) throw new RangeError('updateMany: keys and values differ in count');
    const k = Buffer.concat(keys);
    const v = Buffer.concat(values);
    return call(this.ctx('update'), (n) => n.mapUpdateBatch(fd, k, v, flags)).count;
  }

  async updateManyAsync(keys: Buffer[], values: Buffer[], flags: number = UpdateFlag.ANY): Promise<number> {
    const fd = this.liveFd();
    if (keys.length !== values.length) throw new RangeError('updateManyAsync: keys and values differ in count');
    const k = Buffer.concat(keys);
    const v = Buffer.concat(values);
    return (await callAsync(this.ctx('update'), (n) => n.mapUpdateBatchAsync(fd, k, v, flags))).count;
  }

  /** Deletes the keys that exist; returns how many were deleted. */
  deleteMany(keys: Buffer[]): number {
    const fd = this.liveFd();
    const k = Buffer.concat(keys);
    return call(this.ctx('delete'), (n) => n.mapDeleteBatch(fd, k)).count;
  }

  async deleteManyAsync(keys: Buffer[]): Promise<number> {
    const fd = this.liveFd();
    const k = Buffer.concat(keys);
    return (await callAsync(this.ctx('delete'), (n) => n.mapDeleteBatchAsync(fd, k))).count;
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

// ---- objects --------------------------------------------------------------------------------

export interface ObjectConfig {
  /** Initial values of globals (`const volatile` knobs in .rodata, or .data/.bss). */
  globals?: Record<string, Buffer>;
  /** max_entries overrides per map name. */
  maxEntries?: Record<string, number>;
  /** Existing maps (fds or BpfMaps) to use instead of creating new ones, per map name. */
  reuseMaps?: Record<string, number | BpfMap>;
  /** libbpf auto-pin paths per map name (pinned at load, reused if already pinned). */
  pinPaths?: Record<string, string>;
}

export interface OpenOptions extends ObjectConfig {
  /** Verifier log buffer size (default 4 MiB). */
  logSize?: number;
  /** 0: log only on failure (default); 1 or 2 for verbose logs. */
  logLevel?: number;
}

/** A BPF ELF object: open (read BTF, configure), load into the kernel, then get fds. */
export class BpfObject {
  readonly path: string;
  private readonly obj: NativeBpfObject;
  private readonly maps = new Map<string, BpfMap>();

  private constructor(path: string, obj: NativeBpfObject) {
    this.path = path;
    this.obj = obj;
  }

  /** Opens, configures and loads an object. Load failures throw VerifierError (with .log). */
  static async open(path: string, opts: OpenOptions = {}): Promise<BpfObject> {
    const o = BpfObject.inspect(path, opts);
    try {
      o.configure(opts);
      await o.load();
      return o;
    } catch (e) {
      o.close();
      throw e;
    }
  }

  /** Opens without loading: BTF, names and map definitions are readable; configure, then load(). */
  static inspect(path: string, opts: { logSize?: number; logLevel?: number } = {}): BpfObject {
    return call({ action: `open ${path}`, path }, (n) => {
      const obj = new n.BpfObject();
      const raw: { logSize?: number; logLevel?: number } = {};
      if (opts.logSize !== undefined) raw.logSize = opts.logSize;
      if (opts.logLevel !== undefined) raw.logLevel = opts.logLevel;
      obj.open(path, raw);
      return new BpfObject(path, obj);
    });
  }

  get loaded(): boolean {
    return this.obj.loaded;
  }

  /** Applies globals, map sizes, reused maps and pin paths (before load). */
  configure(cfg: ObjectConfig): void {
    for (const [name, value] of Object.entries(cfg.globals ?? {})) this.setGlobal(name, value);
    for (const [name, n] of Object.entries(cfg.maxEntries ?? {})) this.setMaxEntries(name, n);
    for (const [name, m] of Object.entries(cfg.reuseMaps ?? {})) this.reuseMap(name, m);
    for (const [name, p] of Object.entries(cfg.pinPaths ?? {})) {
      call(this.ctx(`set pin path of ${name}`), () => this.obj.setPinPath(name, p));
    }
  }

  private ctx(action: string): NativeErrorContext {
    return { action: `${action} (${this.path})`, path: this.path };
  }

  setGlobal(name: string, value: Buffer): void {
    call(this.ctx(`set global ${name}`), () => this.obj.setGlobal(name, value));
  }

  getGlobal(name: string): Buffer {
    return call(this.ctx(`read global ${name}`), () => this.obj.getGlobal(name));
  }

  setMaxEntries(map: string, n: number): void {
    call(this.ctx(`size map ${map}`), () => this.obj.setMaxEntries(map, n));
  }

  /** Makes the object use an existing map (e.g. pinned state kept across reloads). */
  reuseMap(map: string, fd: number | BpfMap): void {
    const f = typeof fd === 'number' ? fd : fd.fd;
    call(this.ctx(`reuse map ${map}`), () => this.obj.reuseMapFd(map, f));
  }

  async load(): Promise<void> {
    const obj = this.obj;
    await callAsync(this.ctx('load'), () => obj.load());
  }

  mapNames(): string[] {
    return this.obj.mapNames();
  }

  progNames(): string[] {
    return this.obj.progNames();
  }

  /** A map's definition as compiled (or as configured), before or after load. */
  mapDef(name: string): MapDef {
    return call(this.ctx(`read map ${name}`), () => this.obj.mapDef(name));
  }

  /** A loaded map (borrowed: valid until close()). */
  map(name: string): BpfMap {
    let m = this.maps.get(name);
    if (!m) {
      const fd = call(this.ctx(`get map ${name}`), () => this.obj.mapFd(name));
      m = BpfMap.fromFd(fd, { owned: false, keepAlive: this });
      this.maps.set(name, m);
    }
    return m;
  }

  /** A loaded program's fd (borrowed: valid until close(); keep this object referenced). */
  progFd(name: string): number {
    return call(this.ctx(`get program ${name}`), () => this.obj.progFd(name));
  }

  /** A struct/union layout from the object's BTF (works before load). */
  btfStruct(name: string): BtfStruct {
    return call(this.ctx(`read BTF struct ${name}`), () => this.obj.btfStruct(name));
  }

  /** An enum's values from the object's BTF (works before load). */
  btfEnum(name: string): BtfEnumValue[] {
    return call(this.ctx(`read BTF enum ${name}`), () => this.obj.btfEnum(name));
  }

  /** Closes maps and programs it owns (pinned ones and attached links live on). */
  close(): void {
    for (const m of this.maps.values()) m.invalidate();
    this.maps.clear();
    this.obj.close();
  }
}

// ---- programs, fds --------------------------------------------------------------------------

export function progInfo(fd: number): ProgInfo {
  return call({ action: `read program info of fd ${fd}` }, (n) => n.progInfo(fd));
}

export function mapInfo(fd: number): MapInfo {
  return call({ action: `read map info of fd ${fd}` }, (n) => n.mapInfo(fd));
}

export function progFdById(id: number): number {
  return call({ action: `open program id ${id}` }, (n) => n.progFdById(id));
}

/** Pins any BPF object fd (map, program, link) at a bpffs path. */
export function pinObject(fd: number, path: string): void {
  call({ action: `pin at ${path}`, path }, (n) => n.objPin(fd, path));
}

/** Opens a pinned object; the caller owns (and closes) the fd. */
export function openPinned(path: string): number {
  return call({ action: `open pin ${path}`, path }, (n) => n.objGet(path));
}

export function closeFd(fd: number): void {
  call({ action: `close fd ${fd}` }, (n) => n.closeFd(fd));
}

// ---- XDP ------------------------------------------------------------------------------------

export type XdpMode = 'native' | 'generic' | 'auto';
export type XdpQuery = XdpQueryRaw;

/** Interface index from a name (or passes an index through). */
export function ifIndex(iface: string | number): number {
  if (typeof iface === 'number') return iface;
  return call({ action: `look up interface ${iface}`, ifname: iface }, (n) => n.ifNameToIndex(iface));
}

export function ifName(ifindex: number): string {
  return call({ action: `look up ifindex ${ifindex}`, ifindex }, (n) => n.ifIndexToName(ifindex));
}

function ifaceCtx(action: string, iface: string | number): NativeErrorContext {
  return typeof iface === 'number' ? { action, ifindex: iface } : { action, ifname: iface };
}

/** What is attached to an interface, by mode. */
export function xdpQuery(iface: string | number): XdpQuery {
  const idx = ifIndex(iface);
  return call(ifaceCtx(`query XDP on ${iface}`, iface), (n) => n.xdpQuery(idx));
}

/**
 * An XDP attachment held by a bpf_link. Closing the fd detaches it unless the link is pinned;
 * pin it to keep the program attached after the process exits.
 */
export class XdpLink {
  readonly fd: number;
  readonly ifindex: number;
  /** The mode in use ('unknown' for a link reopened from a pin whose device lost its program). */
  readonly mode: 'native' | 'generic' | 'offload' | 'unknown';
  private closed = false;

  private constructor(fd: number, ifindex: number, mode: XdpLink['mode']) {
    this.fd = fd;
    this.ifindex = ifindex;
    this.mode = mode;
  }

  /** Attaches; 'auto' tries native then generic. Failures: InterfaceNotFoundError, XdpModeError, StateError. */
  static attach(progFd: number, iface: string | number, mode: XdpMode = 'auto'): XdpLink {
    const idx = ifIndex(iface);
    const ctx = { ...ifaceCtx(`attach XDP (${mode}) to ${iface}`, iface), mode };
    const r = call(ctx, (n) => n.xdpAttachLink(progFd, idx, mode));
    return new XdpLink(r.linkFd, idx, r.mode);
  }

  /** Reopens a pinned link (e.g. to update or detach the program of a running director). */
  static fromPin(path: string): XdpLink {
    const fd = call({ action: `open pinned link ${path}`, path }, (n) => n.objGet(path));
    return XdpLink.fromOwnedFd(fd);
  }

  static fromId(id: number): XdpLink {
    return XdpLink.fromOwnedFd(call({ action: `open link id ${id}` }, (n) => n.linkFdById(id)));
  }

  private static fromOwnedFd(fd: number): XdpLink {
    const n = loadNative();
    try {
      const info = call({ action: `read link info of fd ${fd}` }, (b) => b.linkInfo(fd));
      const ifindex = info.ifindex ?? 0;
      let mode: XdpLink['mode'] = 'unknown';
      if (ifindex) {
        const q = call({ action: `query XDP on ifindex ${ifindex}`, ifindex }, (b) => b.xdpQuery(ifindex));
        if (q.driverProgId === info.progId) mode = 'native';
        else if (q.skbProgId === info.progId) mode = 'generic';
        else if (q.hwProgId === info.progId) mode = 'offload';
      }
      return new XdpLink(fd, ifindex, mode);
    } catch (e) {
      n.closeFd(fd);
      throw e;
    }
  }

  private liveFd(): number {
    if (this.closed) throw new NotAttachedError('XDP link is closed');
    return this.fd;
  }

  info(): LinkInfo {
    const fd = this.liveFd();
    return call({ action: 'read XDP link info' }, (n) => n.linkInfo(fd));
  }

  /** Swaps the program atomically; with oldProgFd only if that one is still attached. */
  update(progFd: number, oldProgFd?: number): void {
    const fd = this.liveFd();
    call({ action: 'replace XDP program', ifindex: this.ifindex }, (n) =>
      oldProgFd === undefined ? n.linkUpdate(fd, progFd) : n.linkUpdate(fd, progFd, oldProgFd),
    );
  }

  pin(path: string): void {
    const fd = this.liveFd();
    call({ action: `pin XDP link at ${path}`, path }, (n) => n.objPin(fd, path));
  }

  /** Detaches now, even if pinned (the pin then refers to a defunct link). */
  detach(): void {
    const fd = this.liveFd();
    call({ action: 'detach XDP', ifindex: this.ifindex }, (n) => n.linkDetach(fd));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    loadNative().closeFd(this.fd);
  }
}

/** attachXdp(prog, 'eth0', 'auto'): see XdpLink.attach. */
export function attachXdp(progFd: number, iface: string | number, mode: XdpMode = 'auto'): XdpLink {
  return XdpLink.attach(progFd, iface, mode);
}

// ---- test runs ------------------------------------------------------------------------------

export type TestRunOptions = TestRunOptionsRaw;
export type TestRunResult = TestRunResultRaw;

/** Runs a program once (or `repeat` times) on a frame; returns verdict, output frame, ns/run. */
export function testRun(progFd: number, data: Buffer, opts: TestRunOptions = {}): TestRunResult {
  return call({ action: 'test-run program' }, (n) => n.progTestRun(progFd, data, opts));
}

export function testRunAsync(progFd: number, data: Buffer, opts: TestRunOptions = {}): Promise<TestRunResult> {
  return callAsync({ action: 'test-run program' }, (n) => n.progTestRunAsync(progFd, data, opts));
}

/**
 * `count` separate runs, each on a fresh copy of `data` (programs that push headers see the
 * original frame every time); returns kernel-measured ns per run, for benchmark statistics.
 */
export function testRunEach(progFd: number, data: Buffer, count: number, opts: TestRunOptions = {}): Float64Array {
  return call({ action: 'test-run program' }, (n) => n.progTestRunEach(progFd, data, count, opts));
}

export function testRunEachAsync(progFd: number, data: Buffer, count: number, opts: TestRunOptions = {}): Promise<Float64Array> {
  return callAsync({ action: 'test-run program' }, (n) => n.progTestRunEachAsync(progFd, data, count, opts));
}
