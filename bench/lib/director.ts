/**
 * A director loaded for benchmarks: loadDirector() with the sizes under test, maps written with
 * the shared layouts (src/abi/layout.ts) the way the control plane writes them (realservers,
 * each table into the service's spare slot, then the service entry).
 */
import { native as rawNative } from '../../src/native/testing.js';
import { loadDirector, type DirectorSizes, type LoadedDirector } from '../../src/dataplane/loader.js';
import { encode, SVC_KEY, SVC, REAL, CFG } from '../../src/abi/layout.js';
import { ABI, COUNTERS } from '../../src/abi/generated.js';
import { addrBytes, familyOf, mac } from '../../test/lib/frames.js';
import { vipFilterWords, vipWordValue } from '../../src/dataplane/vipfilter.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const native: any = rawNative();
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_F_INNER_MAP = 0x1000;

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export interface BenchReal { addr: string; mac: string; method: 'dr' | 'tun' }
export interface BenchSvc { proto: 'tcp' | 'udp'; vip: string; port: number; flags?: number; hashFields?: number }

export class BenchDirector {
  private inner = new Map<number, number[]>();
  private toggle = new Map<number, number>();
  private vipWords = new Map<number, bigint>();
  readonly cpus: number = native.possibleCpus();

  private constructor(readonly d: LoadedDirector, readonly vipFilter: boolean) {}

  /** vipFilter: maintain lvs_vip_filter and turn it on (LVS_CFG_F_VIP_FILTER); default on. */
  static async load(opts: { path?: string; sizes?: Partial<DirectorSizes>; vipFilter?: boolean } = {}): Promise<BenchDirector> {
    return new BenchDirector(await loadDirector({ path: opts.path, sizes: opts.sizes }), opts.vipFilter ?? true);
  }

  /** Sets the service's bit in the VIP filter (services are only added here, never removed). */
  private addVip(addr: Buffer, port: number): void {
    const [[w, bit]] = [...vipFilterWords([{ addr, port }])] as [[number, bigint]];
    const v = (this.vipWords.get(w) ?? 0n) | bit;
    if (v !== this.vipWords.get(w)) native.mapUpdate(this.d.obj.map('lvs_vip_filter').fd, u32(w), vipWordValue(v), 0);
    this.vipWords.set(w, v);
  }

  get progFd(): number { return this.d.progFd; }
  fd(name: keyof LoadedDirector['maps']): number { return this.d.maps[name]; }

  close(): void {
    for (const fds of this.inner.values()) for (const fd of fds) native.closeFd(fd);
    this.d.obj.close();
  }

  setCfg(c: { tunSrc4: string; tunSrc6: string; seed: number; tunMtu?: number; ttl?: number }): void {
    const timeouts = Buffer.alloc(24);
    [0, 60, 900, 120, 10, 300].forEach((t, i) => timeouts.writeUInt32LE(t, i * 4));
    native.mapUpdate(this.fd('lvs_cfg'), u32(0), encode(CFG, {
      tun_src4: addrBytes(c.tunSrc4), tun_src6: addrBytes(c.tunSrc6), hash_seed: c.seed,
      timeout_s: timeouts, tun_mtu: c.tunMtu ?? 1500, tun_ttl: c.ttl ?? 64,
      flags: this.vipFilter ? ABI.LVS_CFG_F_VIP_FILTER : 0,
    }), 0);
  }

  setReal(idx: number, r: BenchReal, svcId: number, gen = 1): void {
    native.mapUpdate(this.fd('lvs_reals'), u32(idx), encode(REAL, {
      addr: addrBytes(r.addr), mac: mac(r.mac), smac: Buffer.alloc(6), family: familyOf(r.addr),
      method: r.method === 'dr' ? ABI.LVS_FWD_DR : ABI.LVS_FWD_TUN, flags: ABI.LVS_REAL_F_ACTIVE, gen, svc_id: svcId,
    }), 0);
  }

  /** Many realserver slots in one batch (scaling runs): slot i -> reals[i]. */
  setRealsBatch(first: number, reals: BenchReal[], svcIdOf: (i: number) => number): void {
    const keys = Buffer.alloc(4 * reals.length);
    const vals = Buffer.alloc(REAL.size * reals.length);
    reals.forEach((r, i) => {
      keys.writeUInt32LE(first + i, i * 4);
      encode(REAL, {
        addr: addrBytes(r.addr), mac: mac(r.mac), smac: Buffer.alloc(6), family: familyOf(r.addr),
        method: r.method === 'dr' ? ABI.LVS_FWD_DR : ABI.LVS_FWD_TUN, flags: ABI.LVS_REAL_F_ACTIVE, gen: 1, svc_id: svcIdOf(first + i),
      }).copy(vals, i * REAL.size);
    });
    native.mapUpdateBatch(this.fd('lvs_reals'), keys, vals);
  }

  /** Fills a fresh inner table in the service's spare slot, then switches the service to it. */
  setService(s: BenchSvc, svcId: number, table: Uint32Array): void {
    const inner = native.mapCreate({ type: BPF_MAP_TYPE_ARRAY, name: `lvs_t${svcId}`, keySize: 4, valueSize: 4, maxEntries: table.length, flags: BPF_F_INNER_MAP });
    const keys = Buffer.alloc(4 * table.length);
    for (let i = 0; i < table.length; i++) keys.writeUInt32LE(i, i * 4);
    native.mapUpdateBatch(inner, keys, Buffer.from(table.buffer, table.byteOffset, table.byteLength));
    const t = (this.toggle.get(svcId) ?? 1) ^ 1;
    this.toggle.set(svcId, t);
    native.mapUpdate(this.fd('lvs_tables'), u32(svcId * 2 + t), u32(inner), 0);
    const fds = this.inner.get(svcId) ?? [];
    fds.push(inner);
    this.inner.set(svcId, fds);
    if (this.vipFilter) this.addVip(addrBytes(s.vip), s.port);
    native.mapUpdate(this.fd('lvs_services'), encode(SVC_KEY, {
      addr: addrBytes(s.vip), port: s.port, proto: s.proto === 'tcp' ? 6 : 17, family: familyOf(s.vip),
    }), encode(SVC, {
      id: svcId, table_slot: svcId * 2 + t, table_size: table.length, persist_timeout: 0,
      persist_mask: Buffer.alloc(16, 0xff), flags: s.flags ?? 0, hash_fields: s.hashFields ?? 0x1f,
    }), 0);
  }

  /**
   * Many services at once (scaling runs): every table filled, then one batch update of
   * lvs_tables (a map-in-map update waits for an RCU grace period, ~8 ms here, once per syscall:
   * one by one, 10,000 services took 85 s), then one batch of service entries.
   */
  setServices(list: { s: BenchSvc; svcId: number; table: Uint32Array }[]): void {
    const slots = Buffer.alloc(4 * list.length), fds = Buffer.alloc(4 * list.length);
    const keys: Buffer[] = [], vals: Buffer[] = [];
    list.forEach(({ s, svcId, table }, i) => {
      const inner = native.mapCreate({ type: BPF_MAP_TYPE_ARRAY, name: `lvs_t${svcId}`, keySize: 4, valueSize: 4, maxEntries: table.length, flags: BPF_F_INNER_MAP });
      const k = Buffer.alloc(4 * table.length);
      for (let j = 0; j < table.length; j++) k.writeUInt32LE(j, j * 4);
      native.mapUpdateBatch(inner, k, Buffer.from(table.buffer, table.byteOffset, table.byteLength));
      const t = (this.toggle.get(svcId) ?? 1) ^ 1;
      this.toggle.set(svcId, t);
      this.inner.set(svcId, [...(this.inner.get(svcId) ?? []), inner]);
      slots.writeUInt32LE(svcId * 2 + t, i * 4);
      fds.writeUInt32LE(inner, i * 4);
      if (this.vipFilter) this.addVip(addrBytes(s.vip), s.port);
      keys.push(encode(SVC_KEY, { addr: addrBytes(s.vip), port: s.port, proto: s.proto === 'tcp' ? 6 : 17, family: familyOf(s.vip) }));
      vals.push(encode(SVC, {
        id: svcId, table_slot: svcId * 2 + t, table_size: table.length, persist_timeout: 0,
        persist_mask: Buffer.alloc(16, 0xff), flags: s.flags ?? 0, hash_fields: s.hashFields ?? 0x1f,
      }));
    });
    native.mapUpdateBatch(this.fd('lvs_tables'), slots, fds);
    native.mapUpdateBatch(this.fd('lvs_services'), Buffer.concat(keys), Buffer.concat(vals));
  }

  counters(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    const stride = 8;
    for (const c of COUNTERS) {
      const v: Buffer = native.mapLookup(this.fd('lvs_counters'), u32(c.index));
      let sum = 0n;
      for (let i = 0; i < this.cpus; i++) sum += v.readBigUInt64LE(i * stride);
      out[c.name] = sum;
    }
    return out;
  }
}
