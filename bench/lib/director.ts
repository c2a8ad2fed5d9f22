/**
 * A director loaded for benchmarks: loadDirector() with the sizes under test, maps written by
 * the production map writer (src/director/writer.ts) with values from the production encoders,
 * in the control plane's order (realservers, each table into the service's spare slot, then the
 * service entry). Benchmarks build configurations no apply would (one table shared by many
 * services, thousands of services at once), so they hand-build the steps.
 */
import { loadDirector, type DirectorSizes, type LoadedDirector } from '../../src/dataplane/loader.js';
import { COUNTERS } from '../../src/abi/generated.js';
import { decode, encode, CONN, FLOW_KEY, SVC_KEY } from '../../src/abi/layout.js';
import { ABI } from '../../src/abi/generated.js';
import { encodeDest, encodeReal, encodeService, encodeSettings, serviceKey } from '../../src/dataplane/compile.js';
import { vipFilterWords } from '../../src/dataplane/vipfilter.js';
import { MapWriter, u32 } from '../../src/director/writer.js';
import { filterStep, settingsWithFilter, type ServiceWrite, type Step, type TableFill } from '../../src/director/plan.js';
import { syncAcceptedLocked } from '../../src/director/lifecycle.js';
import type { AcceptedMac } from '../../src/dataplane/l2addrs.js';

/** The MAC benchmark frames are sent to (test/lib/frames.ts's DIRECTOR_MAC). */
export const BENCH_DIRECTOR_MAC = '02:00:00:00:00:01';

export { u32 } from '../../src/director/writer.js';

/** weight: written to lvs_dests (what the least-connection family reads). */
export interface BenchReal {
  addr: string; mac: string; method: 'dr' | 'tun' | 'nat'; weight?: number;
  /** LVS-NAT: realserver port, service VIP and port; ifindex / smac: egress when not the ingress. */
  nat?: { port: number; vip: string; vport: number }; ifindex?: number; smac?: string;
}
/** tableSize: entries drawn from, when fewer than the table holds (least-connection family). */
export interface BenchSvc { proto: 'tcp' | 'udp'; vip: string; port: number; flags?: number; hashFields?: number; tableSize?: number }

export class BenchDirector {
  private toggle = new Map<number, number>();
  private vips: { addr: Uint8Array; port: number }[] = [];
  private vipWords = new Map<number, bigint>();
  private readonly writer: MapWriter;

  private constructor(readonly d: LoadedDirector, readonly vipFilter: boolean) {
    this.writer = MapWriter.fromLoaded(d);
  }

  /** vipFilter: maintain lvs_vip_filter and turn it on (LVS_CFG_F_VIP_FILTER); default on. */
  static async load(opts: { path?: string; sizes?: Partial<DirectorSizes>; vipFilter?: boolean } = {}): Promise<BenchDirector> {
    const h = new BenchDirector(await loadDirector({ ...(opts.path ? { path: opts.path } : {}), ...(opts.sizes ? { sizes: opts.sizes } : {}) }), opts.vipFilter ?? true);
    // BPF_PROG_TEST_RUN without a context receives on the loopback (ifindex 1).
    h.acceptOn([1]);
    return h;
  }

  /**
   * The director's MAC accepted on these ingress interfaces (and only there), plus `also`: a
   * repeated BPF_PROG_TEST_RUN runs the program on its own output, whose destination is the
   * realserver's MAC by then, so the benchmark accepts those too to keep measuring the forward.
   */
  acceptOn(ifindexes: number[], also: string[] = []): void {
    const want: AcceptedMac[] = ifindexes.flatMap((ifindex) => [BENCH_DIRECTOR_MAC, ...also].map((mac) => ({ ifindex, mac, egress: BENCH_DIRECTOR_MAC, kind: 'own' as const })));
    syncAcceptedLocked(this.writer, want);
  }

  get progFd(): number { return this.d.progFd; }

  close(): void {
    this.d.obj.close();
  }

  private exec(...steps: (Step | undefined)[]): void {
    this.writer.execute(steps.filter((s): s is Step => s !== undefined));
  }

  setCfg(c: { tunSrc4: string; tunSrc6: string; seed: number; tunMtu?: number; ttl?: number; flags?: number; syncRefreshS?: number }): void {
    const value = encodeSettings({
      tunSrc4: c.tunSrc4, tunSrc6: c.tunSrc6, hashSeed: c.seed, tunMtu: c.tunMtu ?? 1500, tunTtl: c.ttl ?? 64, flags: c.flags ?? 0, syncRefreshS: c.syncRefreshS ?? 0,
    });
    this.exec({ op: 'settings', value: this.vipFilter ? settingsWithFilter(value) : value });
  }

  private real(r: BenchReal, svcId: number, gen: number): Buffer {
    return encodeReal({
      addr: r.addr, mac: r.mac, method: r.method, gen, svcId,
      ...(r.nat ? { nat: r.nat } : {}), ...(r.ifindex ? { ifindex: r.ifindex } : {}), ...(r.smac ? { smac: r.smac } : {}),
    });
  }

  /** An egress interface for XDP_REDIRECT (lvs_tx_ports), as attach adds each interface. */
  setTxPort(ifindex: number): void {
    this.exec({ op: 'tx-ports', ifindexes: [ifindex] });
  }

  setReal(idx: number, r: BenchReal, svcId: number, gen = 1): void {
    this.exec({ op: 'reals', writes: [{ index: idx, value: this.real(r, svcId, gen), ...(r.weight !== undefined ? { dest: encodeDest({ weight: r.weight }) } : {}) }] });
  }

  /** Many realserver slots in one batch (scaling runs): slot first+i -> reals[i]. */
  setRealsBatch(first: number, reals: BenchReal[], svcIdOf: (i: number) => number): void {
    this.exec({ op: 'reals', writes: reals.map((r, i) => ({ index: first + i, value: this.real(r, svcIdOf(first + i), 1) })) });
  }

  /** Fills a fresh inner table in the service's spare slot, then switches the service to it. */
  setService(s: BenchSvc, svcId: number, table: Uint32Array): void {
    this.setServices([{ s, svcId, table }]);
  }

  /**
   * Many services at once (scaling runs): the VIP filter widened, every table filled and put in
   * lvs_tables in one batch (a map-in-map update waits for an RCU grace period, ~8 ms here, once
   * per syscall: one by one, 10,000 services took 85 s), then one batch of service entries.
   */
  setServices(list: { s: BenchSvc; svcId: number; table: Uint32Array }[]): void {
    const fills: TableFill[] = [];
    const writes: ServiceWrite[] = [];
    for (const { s, svcId, table } of list) {
      const t = (this.toggle.get(svcId) ?? 1) ^ 1;
      this.toggle.set(svcId, t);
      const key = serviceKey({ protocol: s.proto, vip: s.vip, port: s.port });
      fills.push({ service: s.vip, svcId, slot: svcId * 2 + t, table });
      writes.push({
        service: s.vip, key,
        value: encodeService({
          svcId, tableSlot: svcId * 2 + t, tableSize: s.tableSize ?? table.length, persistMask: new Uint8Array(16).fill(0xff),
          flags: s.flags ?? 0, hashFields: s.hashFields ?? 0x1f,
        }),
      });
      this.vips.push({ addr: decode(SVC_KEY, key).addr as Uint8Array, port: s.port });
    }
    let widen: Step | undefined;
    if (this.vipFilter) {
      const next = vipFilterWords(this.vips);
      widen = filterStep(this.vipWords, next);
      this.vipWords = next;
    }
    this.exec(widen, { op: 'tables', fills }, { op: 'switch', writes });
  }

  /**
   * lvs_conns filled with n established entries of other clients (203.0.0.0/8, port 80 on
   * 10.0.0.1), as on a busy director: from then on every insert evicts. (SYNs no longer enter
   * lvs_conns: their SYN_RECV connections wait in lvs_synrecv, bpf/lvs_synrecv.h.)
   */
  fillConns(n: number, real = 1, gen = 1): void {
    const value = encode(CONN, { last_seen_ns: process.hrtime.bigint(), real, gen, state: ABI.LVS_CS_ESTABLISHED });
    const daddr = new Uint8Array(16);
    daddr.set([10, 0, 0, 1]);
    for (let first = 0; first < n; first += 8192) {
      const keys: Buffer[] = [];
      for (let i = first; i < Math.min(n, first + 8192); i++) {
        const saddr = new Uint8Array(16);
        saddr.set([203, (i >> 16) & 255, (i >> 8) & 255, i & 255]);
        keys.push(encode(FLOW_KEY, { saddr, daddr, sport: 40000, dport: 80, proto: 6, family: 4 }));
      }
      this.writer.putEntries('lvs_conns', keys, keys.map(() => value));
    }
  }

  /**
   * ESTABLISHED lvs_conns entries for the IPv4 flows bench/bpf/wrap.bpf.c's cycle mode walks from
   * a frame of saddr -> daddr:dport: flow i's source port is i & 0xffff and its source address's
   * last two bytes i >> 16, as the wrapper writes them (host order); with ndst, its destination's
   * last two bytes are i % ndst (network order), and it is on the first realserver of that
   * service (realsPer slots each). A DR / Tun SYN no longer enters lvs_conns (lvs_synrecv.h), so
   * a working set larger than the SYN_RECV slots is established here, not by a pass of SYNs.
   */
  fillWalk(mod: number, ndst: number, base: { saddr: readonly number[]; daddr: readonly number[]; dport: number }, realsPer: number): void {
    const now = process.hrtime.bigint();
    for (let first = 0; first < mod; first += 8192) {
      const keys: Buffer[] = [];
      const values: Buffer[] = [];
      for (let i = first; i < Math.min(mod, first + 8192); i++) {
        const saddr = new Uint8Array(16);
        saddr.set([base.saddr[0]!, base.saddr[1]!, (i >>> 16) & 255, (i >>> 24) & 255]);
        const daddr = new Uint8Array(16);
        const d = ndst ? i % ndst : 0;
        daddr.set(ndst ? [base.daddr[0]!, base.daddr[1]!, (d >> 8) & 255, d & 255] : base.daddr.slice(0, 4));
        const sport = ((i & 255) << 8) | ((i >> 8) & 255);
        keys.push(encode(FLOW_KEY, { saddr, daddr, sport, dport: base.dport, proto: 6, family: 4 }));
        values.push(encode(CONN, { last_seen_ns: now, real: d * realsPer, gen: 1, state: ABI.LVS_CS_ESTABLISHED }));
      }
      this.writer.putEntries('lvs_conns', keys, values);
    }
  }

  counters(): Record<string, bigint> {
    const c = this.writer.maps.lvs_counters;
    return Object.fromEntries(COUNTERS.map((x) => [x.name, (c.lookupPerCpu(u32(x.index)) ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n)]));
  }
}
