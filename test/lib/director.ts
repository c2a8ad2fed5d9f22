/**
 * Test harness around the loaded lvs_director program. Maps are written only through the
 * production map writer (src/director/writer.ts): a configuration through the same plan an
 * apply builds (`apply`), or hand-built steps with values from the production encoders for the
 * states the packet tests need one piece at a time (`setReal`, `setService`, ...). Frames run
 * through BPF_PROG_TEST_RUN; per-CPU counters are read back summed.
 */
import { testRun, possibleCpus, RingReader } from '../../src/native/index.js';
import { loadDirector, type LoadedDirector } from '../../src/dataplane/loader.js';
import { decode, SVC_KEY, STATS, FLOW_KEY } from '../../src/abi/layout.js';
import { COUNTERS } from '../../src/abi/generated.js';
import { addrBytes, DIRECTOR_MAC } from './frames.js';
import {
  encodeReal, encodeService, encodeSettings, serviceKey, realId, type MacResolver, type L2Next,
} from '../../src/dataplane/compile.js';
import { vipFilterWords } from '../../src/dataplane/vipfilter.js';
import { MapWriter, u32 } from '../../src/director/writer.js';
import { buildPlan, emptyApplied, filterStep, settingsWithFilter, type Plan, type Step, type SyncSetting } from '../../src/director/plan.js';
import type { AcceptedMac } from '../../src/dataplane/l2addrs.js';
import { syncAcceptedLocked } from '../../src/director/lifecycle.js';
import type { AppliedState } from '../../src/director/snapshot.js';
import type { DirectorConfig } from '../../src/model/types.js';

export const XDP = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;
/** BPF_PROG_TEST_RUN without a context runs frames as received on the namespace's loopback. */
export const TEST_IFINDEX = 1;
const DEFAULT_ACCEPTED: AcceptedMac[] = [{ ifindex: TEST_IFINDEX, mac: DIRECTOR_MAC, egress: DIRECTOR_MAC, kind: 'own' }];

export interface RealSpec {
  addr: string; mac: string; method: 'dr' | 'tun' | 'nat'; quiesced?: boolean; ifindex?: number; smac?: string;
  /** LVS-NAT: the realserver's port and the service side of its replies. */
  nat?: { port: number; vip: string; vport: number };
}
export interface SvcSpec {
  proto: 'tcp' | 'udp'; vip: string; port: number; hashFields?: number; flags?: number;
  persistTimeout?: number; persistMask?: string;
}
export interface CfgSpec {
  tunSrc4: string; tunSrc6: string; seed: number; tunMtu: number; ttl: number; flags?: number;
  /** Connection sync (LVS_CFG_F_SYNC in flags): lvs_cfg.sync_refresh_s. */
  syncRefreshS?: number;
}

// maxSyncRing: 16 KiB (178 sync events) lets a test fill the ring with a few hundred flows.
const SIZES = { maxServices: 16, maxReals: 64, maxConns: 4096, maxPersist: 1024, maxFrags: 1024, maxStrays: 256, maxSyncRing: 16384, maxSynRecv: 1024 };

export class DirectorHarness {
  private tableToggle = new Map<number, number>();
  /** Services' (address, port) by key, and the VIP filter words written from them. */
  private vips = new Map<string, { addr: Uint8Array; port: number }>();
  private vipWords = new Map<number, bigint>();
  /** What `apply` last wrote: the next apply is planned against it, as the director does. */
  private applied: AppliedState = emptyApplied();
  readonly writer: MapWriter;
  private ring?: RingReader;

  private constructor(private readonly d: LoadedDirector) {
    this.writer = MapWriter.fromLoaded(d);
  }

  get progFd(): number {
    return this.d.progFd;
  }

  /** lvs_synrecv's bucket key this load drew (hex: test/model/synrecv.ts's synRecvBucket). */
  get synrecvKey(): string {
    return this.d.synrecvKey.toString('hex');
  }

  /** `sizes`: load-time sizes other than the harness's (the flow cache's, for one). */
  static async load(objPath = 'bpf/lvs_director.o', globals: Record<string, number> = {}, sizes: { maxFlowcache?: number } = {}): Promise<DirectorHarness> {
    const knobs = Object.fromEntries(Object.entries(globals).map(([k, v]) => [k.replace(/^cfg_enable_/, ''), v !== 0]));
    // Small sizes keep the per-test reset fast.
    const h = new DirectorHarness(await loadDirector({ path: objPath, knobs, sizes: { ...SIZES, ...sizes } }));
    h.setAccepted(DEFAULT_ACCEPTED);
    return h;
  }

  close(): void {
    this.ring?.close();
    this.d.obj.close();
  }

  /** The records waiting in lvs_sync_events (connection sync events), consumed: at most `max`. */
  syncEvents(max = 1 << 20): Buffer[] {
    this.ring ??= new RingReader(this.writer.maps.lvs_sync_events.fd);
    return this.ring.consume(max);
  }

  private exec(...steps: (Step | undefined)[]): void {
    this.writer.execute(steps.filter((s): s is Step => s !== undefined));
  }

  /** Empties every map (connections, templates, counters, services, realservers). */
  reset(): void {
    for (const m of ['lvs_services', 'lvs_conns', 'lvs_strays', 'lvs_persist', 'lvs_frags', 'lvs_fwmarks'] as const) this.writer.clear(m);
    this.writer.clearSynRecv();
    const reals = Array.from({ length: SIZES.maxReals }, (_, i) => i);
    const services = Array.from({ length: SIZES.maxServices }, (_, i) => i);
    this.exec(
      { op: 'clear-reals', indexes: reals },
      { op: 'zero', services, reals },
      { op: 'free-tables', slots: Array.from({ length: 2 * SIZES.maxServices }, (_, i) => i) },
    );
    this.writer.zeroCounters(COUNTERS.map((c) => c.index));
    this.syncEvents(); // an earlier test's events
    this.tableToggle.clear();
    this.vips.clear();
    this.applied = emptyApplied();
    this.syncVipFilter();
    this.setAccepted(DEFAULT_ACCEPTED);
  }

  /** The accepted destination MACs (lvs_l2_addrs), exactly these; reset() leaves the director's
   *  own MAC on the test-run interface. */
  setAccepted(list: AcceptedMac[]): void {
    syncAcceptedLocked(this.writer, list);
  }

  /** Writes the VIP filter (src/dataplane/vipfilter.ts) for the services set so far. */
  private syncVipFilter(): void {
    const next = vipFilterWords(this.vips.values());
    this.exec(filterStep(this.vipWords, next));
    this.vipWords = next;
  }

  private addVip(key: Buffer): void {
    const k = decode(SVC_KEY, key);
    this.vips.set(key.toString('hex'), { addr: k.addr as Uint8Array, port: k.port as number });
    this.syncVipFilter();
  }

  setCfg(c: CfgSpec): void {
    this.exec({
      op: 'settings',
      value: settingsWithFilter(encodeSettings({
        tunSrc4: c.tunSrc4, tunSrc6: c.tunSrc6, hashSeed: c.seed, tunMtu: c.tunMtu, tunTtl: c.ttl, flags: c.flags ?? 0, syncRefreshS: c.syncRefreshS ?? 0,
      })),
    });
  }

  setReal(idx: number, r: RealSpec, gen = 1, svcId = 0): void {
    this.exec({
      op: 'reals',
      writes: [{
        index: idx,
        value: encodeReal({
          addr: r.addr, mac: r.mac, ...(r.smac ? { smac: r.smac } : {}), method: r.method, quiesced: r.quiesced ?? false,
          gen, ...(r.ifindex ? { ifindex: r.ifindex } : {}), svcId, ...(r.nat ? { nat: r.nat } : {}),
        }),
      }],
    });
  }

  /** Lets realservers use ifindex as egress (XDP_REDIRECT through the devmap). */
  setTxPort(ifindex: number): void {
    this.exec({ op: 'tx-ports', ifindexes: [ifindex] });
  }

  deleteReal(idx: number): void {
    this.exec({ op: 'clear-reals', indexes: [idx] });
  }

  /** Fills a fresh table in the service's spare slot, then switches the service to it. */
  setService(s: SvcSpec, id: number, table: number[]): void {
    const toggle = (this.tableToggle.get(id) ?? 1) ^ 1;
    this.tableToggle.set(id, toggle);
    const slot = id * 2 + toggle;
    const key = serviceKey({ protocol: s.proto, vip: s.vip, port: s.port });
    const mask = Buffer.alloc(16, 0xff);
    if (s.persistMask) addrBytes(s.persistMask).copy(mask);
    this.addVip(key);
    this.exec(
      { op: 'tables', fills: [{ service: s.vip, svcId: id, slot, table: Uint32Array.from(table) }] },
      {
        op: 'switch',
        writes: [{
          service: s.vip, key,
          value: encodeService({
            svcId: id, tableSlot: slot, tableSize: table.length, persistTimeout: s.persistTimeout ?? 0,
            persistMask: mask, flags: s.flags ?? 0, hashFields: s.hashFields ?? 0x1f,
          }),
        }],
      },
    );
  }

  /**
   * Applies a configuration the way the director does: a plan against what the previous apply
   * wrote (slots and generations kept), executed by the map writer. Returns the plan.
   */
  apply(desired: DirectorConfig, resolve: MacResolver, sync?: SyncSetting): Plan {
    const l2 = new Map<string, L2Next>();
    for (const s of desired.services) {
      for (const r of s.realservers) {
        const hop = resolve(s, r);
        if (hop) l2.set(realId(s, r), hop);
      }
    }
    const plan = buildPlan({
      running: this.applied, desired, l2, limits: { ...SIZES, maxTableSize: 131071 }, tunnel: desired.settings?.tunnel ?? {},
      ...(sync ? { sync } : {}),
    });
    this.writer.execute(plan.steps, { tableOf: (id) => plan.compiled!.services.find((x) => x.id === id)!.table });
    this.applied = plan.target;
    return plan;
  }

  /** What the last `apply` wrote (a reader's view of the running configuration). */
  get appliedState(): AppliedState {
    return this.applied;
  }

  /** One frame through the program; `ingressIfindex`: as received there (default: loopback). */
  run(frame: Buffer, ingressIfindex?: number): { action: number; out: Buffer } {
    const r = testRun(this.progFd, frame, { dataSizeOut: frame.length + 256, ...(ingressIfindex ? { ingressIfindex } : {}) });
    return { action: r.retval, out: r.data };
  }


  /**
   * Sets every CPU's cached coarse clock (lvs_clock: jiffies, ns) to `ns`, keeping its jiffies,
   * so a packet run within the same jiffy uses the stale value. Returns a check that says whether
   * the cache was still untouched (no CPU refreshed it) afterwards. The clock cache is the
   * program's own scratch state, not the director's: no plan step writes it.
   */
  staleClock(ns: bigint): () => boolean {
    const clock = this.d.obj.map('lvs_clock');
    const v = Buffer.from(clock.lookup(u32(0))!);
    for (let c = 0; c < possibleCpus(); c++) v.writeBigUInt64LE(ns, c * 16 + 8);
    clock.update(u32(0), v);
    return () => clock.lookup(u32(0))!.equals(v);
  }

  private perCpu(m: 'lvs_counters' | 'lvs_svc_stats' | 'lvs_real_stats', idx: number): Buffer[] {
    const map = this.writer.maps[m];
    return map.lookupPerCpu(u32(idx)) ?? [];
  }

  counters(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    for (const c of COUNTERS) out[c.name] = this.perCpu('lvs_counters', c.index).reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
    return out;
  }

  private stats(m: 'lvs_svc_stats' | 'lvs_real_stats', idx: number): { packets: bigint; bytes: bigint; conns: bigint; outPackets: bigint; outBytes: bigint } {
    const sum = { packets: 0n, bytes: 0n, conns: 0n, outPackets: 0n, outBytes: 0n };
    for (const b of this.perCpu(m, idx)) {
      const v = decode(STATS, b);
      sum.packets += v.packets as bigint;
      sum.bytes += v.bytes as bigint;
      sum.conns += v.conns as bigint;
      sum.outPackets += v.out_packets as bigint;
      sum.outBytes += v.out_bytes as bigint;
    }
    return sum;
  }

  svcStats(id: number) { return this.stats('lvs_svc_stats', id); }
  realStats(idx: number) { return this.stats('lvs_real_stats', idx); }

  connCount(): number {
    return this.writer.maps.lvs_conns.entries().keys.length;
  }

  conns(): { key: Record<string, unknown>; value: Buffer }[] {
    const { keys, values } = this.writer.maps.lvs_conns.entries();
    return keys.map((k, i) => ({ key: decode(FLOW_KEY, k), value: Buffer.from(values[i]!) }));
  }
}
