/**
 * BPF ELF objects (native/bpf_object.cc): open (BTF readable, configurable), load into the kernel,
 * then borrow their map and program fds.
 */
import { call, callAsync } from './common.js';
import { BpfMap } from './maps.js';
import type { NativeErrorContext } from '../errors.js';
import type { BtfEnumValue, BtfStruct, MapDef, NativeBpfObject } from './binding.js';

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
