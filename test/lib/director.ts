/**
 * Test harness around the loaded lvs_director program: writes map entries with the shared
 * layouts (src/abi/layout.ts), runs frames through BPF_PROG_TEST_RUN and reads the per-CPU
 * counters back. Tests set maps directly here; the control plane's compiler is tested apart.
 */
import { native as rawNative } from '../../src/native/testing.js';
import { loadDirector, type DirectorMap } from '../../src/dataplane/loader.js';
import {
  encode, decode, SVC_KEY, SVC, REAL, CFG, STATS, FLOW_KEY,
} from '../../src/abi/layout.js';
import { ABI, COUNTERS } from '../../src/abi/generated.js';
import { addrBytes, familyOf, mac } from './frames.js';
import type { CompiledDirector } from '../../src/dataplane/compile.js';
import { vipFilterWords, vipWordValue } from '../../src/dataplane/vipfilter.js';

// Raw binding: tests poke maps below the facade on purpose.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const native: any = rawNative();

export const XDP = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_F_INNER_MAP = 0x1000;

export interface RealSpec { addr: string; mac: string; method: 'dr' | 'tun'; quiesced?: boolean; ifindex?: number; smac?: string }
export interface SvcSpec {
  proto: 'tcp' | 'udp'; vip: string; port: number; hashFields?: number; flags?: number;
  persistTimeout?: number; persistMask?: string;
}
export interface CfgSpec { tunSrc4: string; tunSrc6: string; seed: number; tunMtu: number; ttl: number }

type MapName = DirectorMap;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export class DirectorHarness {
  private tableToggle = new Map<number, number>();
  private innerFds: number[] = [];
  /** Services' (address, port) by key, and the VIP filter words written from them. */
  private vips = new Map<string, { addr: Buffer; port: number }>();
  private vipWords = new Map<number, bigint>();
  private readonly cpus: number = native.possibleCpus();

  private constructor(private readonly obj: any, readonly progFd: number, private readonly fds: Record<MapName, number>) {}

  static async load(objPath = 'bpf/lvs_director.o', globals: Record<string, number> = {}): Promise<DirectorHarness> {
    const knobs = Object.fromEntries(Object.entries(globals).map(([k, v]) => [k.replace(/^cfg_enable_/, ''), v !== 0]));
    // Small sizes keep the per-test reset fast.
    const d = await loadDirector({
      path: objPath, knobs,
      sizes: { maxServices: 16, maxReals: 64, maxConns: 4096, maxPersist: 1024, maxFrags: 1024 },
    });
    return new DirectorHarness(d.obj, d.progFd, d.maps);
  }

  close(): void {
    for (const fd of this.innerFds) native.closeFd(fd);
    this.obj.close();
  }

  /** Empties every map (connections, templates, counters, services, realservers). */
  reset(): void {
    for (const m of ['lvs_services', 'lvs_conns', 'lvs_persist', 'lvs_frags'] as const) {
      let k: Buffer | null;
      while ((k = native.mapNextKey(this.fds[m], null))) native.mapDelete(this.fds[m], k);
    }
    const zeroArray = (m: MapName, n: number, size: number) => {
      const v = Buffer.alloc(size);
      for (let i = 0; i < n; i++) native.mapUpdate(this.fds[m], u32(i), v, 0);
    };
    const per = (size: number) => Math.ceil(size / 8) * 8 * this.cpus;
    zeroArray('lvs_reals', 64, REAL.size);
    zeroArray('lvs_real_stats', 64, per(STATS.size));
    zeroArray('lvs_svc_stats', 16, per(STATS.size));
    zeroArray('lvs_rr_cursor', 16, per(4));
    zeroArray('lvs_counters', COUNTERS.length, per(8));
    for (let i = 0; i < 32; i++) native.mapDelete(this.fds.lvs_tables, u32(i));
    for (const fd of this.innerFds) native.closeFd(fd);
    this.innerFds = [];
    this.tableToggle.clear();
    this.vips.clear();
    this.syncVipFilter();
  }

  /** Writes the VIP filter (src/dataplane/vipfilter.ts) for the services set so far. */
  private syncVipFilter(): void {
    const next = vipFilterWords(this.vips.values());
    const fd = this.obj.mapFd('lvs_vip_filter');
    for (const w of new Set([...this.vipWords.keys(), ...next.keys()])) {
      if (this.vipWords.get(w) !== next.get(w)) native.mapUpdate(fd, u32(w), vipWordValue(next.get(w) ?? 0n), 0);
    }
    this.vipWords = next;
  }

  private addVip(key: Buffer): void {
    const k = decode(SVC_KEY, key);
    this.vips.set(key.toString('hex'), { addr: Buffer.from(k.addr as Uint8Array), port: k.port as number });
    this.syncVipFilter();
  }

  setCfg(c: CfgSpec): void {
    const timeouts = Buffer.alloc(24);
    [0, 60, 900, 120, 10, 300].forEach((t, i) => timeouts.writeUInt32LE(t, i * 4));
    native.mapUpdate(this.fds.lvs_cfg, u32(0), encode(CFG, {
      tun_src4: addrBytes(c.tunSrc4), tun_src6: addrBytes(c.tunSrc6), hash_seed: c.seed,
      timeout_s: timeouts, tun_mtu: c.tunMtu, tun_ttl: c.ttl, flags: ABI.LVS_CFG_F_VIP_FILTER,
    }), 0);
  }

  setReal(idx: number, r: RealSpec, gen = 1, svcId = 0): void {
    native.mapUpdate(this.fds.lvs_reals, u32(idx), encode(REAL, {
      addr: addrBytes(r.addr), mac: mac(r.mac), smac: r.smac ? mac(r.smac) : Buffer.alloc(6),
      family: familyOf(r.addr), method: r.method === 'dr' ? ABI.LVS_FWD_DR : ABI.LVS_FWD_TUN,
      flags: ABI.LVS_REAL_F_ACTIVE | (r.quiesced ? ABI.LVS_REAL_F_QUIESCED : 0), gen,
      ifindex: r.ifindex ?? 0, svc_id: svcId,
    }), 0);
  }

  /** Lets realservers use ifindex as egress (XDP_REDIRECT through the devmap). */
  setTxPort(ifindex: number): void {
    native.mapUpdate(this.fds.lvs_tx_ports, u32(ifindex), u32(ifindex), 0);
  }

  deleteReal(idx: number): void {
    native.mapUpdate(this.fds.lvs_reals, u32(idx), Buffer.alloc(REAL.size), 0);
  }

  /** Fills a fresh inner table and puts it in the service's spare lvs_tables slot; returns the
   *  slot, which the caller then switches the service entry to. */
  private installTable(svcId: number, table: Uint32Array): number {
    const inner = native.mapCreate({ type: BPF_MAP_TYPE_ARRAY, name: `lvs_t${svcId}`, keySize: 4, valueSize: 4, maxEntries: table.length, flags: BPF_F_INNER_MAP });
    this.innerFds.push(inner);
    const keys = Buffer.alloc(4 * table.length);
    for (let i = 0; i < table.length; i++) keys.writeUInt32LE(i, i * 4);
    native.mapUpdateBatch(inner, keys, Buffer.from(table.buffer, table.byteOffset, table.byteLength));
    const toggle = (this.tableToggle.get(svcId) ?? 1) ^ 1;
    this.tableToggle.set(svcId, toggle);
    const slot = svcId * 2 + toggle;
    native.mapUpdate(this.fds.lvs_tables, u32(slot), u32(inner), 0);
    return slot;
  }

  /** Fills a fresh table in the service's spare slot, then switches the service to it. */
  setService(s: SvcSpec, id: number, table: number[]): void {
    const slot = this.installTable(id, Uint32Array.from(table));
    const fam = familyOf(s.vip);
    const mask = Buffer.alloc(16, 0xff);
    if (s.persistMask) addrBytes(s.persistMask).copy(mask);
    const key = encode(SVC_KEY, { addr: addrBytes(s.vip), port: s.port, proto: s.proto === 'tcp' ? 6 : 17, family: fam });
    this.addVip(key);
    native.mapUpdate(this.fds.lvs_services, key, encode(SVC, {
      id, table_slot: slot, table_size: table.length, persist_timeout: s.persistTimeout ?? 0,
      persist_mask: mask, flags: s.flags ?? 0, hash_fields: s.hashFields ?? 0x1f,
    }), 0);
  }

  /** Writes a compiled director (src/dataplane/compile.ts) the way the loader does: realservers,
   *  then each table into the service's spare slot, then the service entry (the switch). */
  loadCompiled(c: CompiledDirector): void {
    for (const s of c.services) this.addVip(s.key);
    const cfg = Buffer.from(c.cfg);
    cfg[CFG.fields.find((f) => f.name === 'flags')!.offset]! |= ABI.LVS_CFG_F_VIP_FILTER;
    native.mapUpdate(this.fds.lvs_cfg, u32(0), cfg, 0);
    for (const r of c.reals) native.mapUpdate(this.fds.lvs_reals, u32(r.index), r.value, 0);
    for (const s of c.services) {
      native.mapUpdate(this.fds.lvs_services, s.key, s.value(this.installTable(s.svcId, s.table)), 0);
    }
  }

  run(frame: Buffer): { action: number; out: Buffer } {
    const r = native.progTestRun(this.progFd, frame, { dataSizeOut: frame.length + 256 });
    return { action: r.retval, out: r.data };
  }

  private perCpu(m: MapName, idx: number, size: number): Buffer[] {
    const v: Buffer = native.mapLookup(this.fds[m], u32(idx));
    const stride = Math.ceil(size / 8) * 8;
    return Array.from({ length: this.cpus }, (_, c) => v.subarray(c * stride, c * stride + size));
  }

  /**
   * Sets every CPU's cached coarse clock (lvs_clock: jiffies, ns) to `ns`, keeping its jiffies,
   * so a packet run within the same jiffy uses the stale value. Returns a check that says whether
   * the cache was still untouched (no CPU refreshed it) afterwards.
   */
  staleClock(ns: bigint): () => boolean {
    const fd = this.obj.mapFd('lvs_clock');
    const v: Buffer = Buffer.from(native.mapLookup(fd, u32(0)));
    for (let c = 0; c < this.cpus; c++) v.writeBigUInt64LE(ns, c * 16 + 8);
    native.mapUpdate(fd, u32(0), v, 0);
    return () => (native.mapLookup(fd, u32(0)) as Buffer).equals(v);
  }

  counters(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    for (const c of COUNTERS) {
      out[c.name] = this.perCpu('lvs_counters', c.index, 8).reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
    }
    return out;
  }

  private stats(m: MapName, idx: number): { packets: bigint; bytes: bigint; conns: bigint } {
    const sum = { packets: 0n, bytes: 0n, conns: 0n };
    for (const b of this.perCpu(m, idx, STATS.size)) {
      const v = decode(STATS, b);
      sum.packets += v.packets as bigint;
      sum.bytes += v.bytes as bigint;
      sum.conns += v.conns as bigint;
    }
    return sum;
  }

  svcStats(id: number) { return this.stats('lvs_svc_stats', id); }
  realStats(idx: number) { return this.stats('lvs_real_stats', idx); }

  connCount(): number {
    let n = 0;
    let k: Buffer | null = null;
    while ((k = native.mapNextKey(this.fds.lvs_conns, k))) n++;
    return n;
  }

  conns(): { key: Record<string, unknown>; value: Buffer }[] {
    const out = [];
    let k: Buffer | null = null;
    while ((k = native.mapNextKey(this.fds.lvs_conns, k))) out.push({ key: decode(FLOW_KEY, k), value: native.mapLookup(this.fds.lvs_conns, k) });
    return out;
  }
}
