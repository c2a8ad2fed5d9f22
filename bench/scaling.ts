/**
 * Scaling: the cost of an established flow as the configuration grows, relative to the smallest
 * configuration of each range, measured in the same run (configurations interleaved per round).
 *
 * Each configuration is a director loaded with sizes that fit it (loadDirector({ sizes })). The
 * measured packets walk a working set of established flows (bench/bpf/wrap.bpf.c, cycle mode):
 * flow i of K goes to service i % N, so many services, many realservers and many connection
 * entries are really touched, with their cache misses, not one hot entry. The working set is
 * established first (every flow inserted), then measured as hits. The wrapper's own cost (same
 * walk in front of XDP_DROP) is subtracted.
 */
import { XdpAction } from '../src/native/index.js';
import { native } from '../src/native/testing.js';
import { clientPacket, TCP } from '../test/lib/frames.js';
import { BenchDirector, type BenchReal } from './lib/director.js';
import { IPV4_FLOW, loadWrapper, type Wrapper, type FlowWalk } from './lib/wrap.js';
import { median, summarize } from './lib/stats.js';

export interface ScalePoint { x: number; medianNs: number; minNs: number; maxNs: number; ratio: number; ratioMin: number; ratioMax: number }
export interface ScaleCurve { axis: string; label: string; unit: string; target: number; points: ScalePoint[]; note: string }

const VIP_BASE = '10.1.0.0'; // service i: 10.1.(i >> 8).(i & 255)
const vipOf = (i: number) => `10.1.${i >> 8}.${i & 255}`;
const realOf = (i: number): BenchReal => ({ addr: `10.${128 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, mac: `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, method: 'dr' });

interface Config { x: number; h: BenchDirector; walk: FlowWalk; establish?: FlowWalk; realsPer: number }

/** The walked flows' frame (the wrapper varies source port and address, and the destination). */
const CLIENT = [198, 51, 0, 7];
const frame = (flags: number = TCP.ACK) => clientPacket(CLIENT.join('.'), VIP_BASE, { proto: 'tcp', sport: 1, dport: 80, flags, payload: Buffer.alloc(64) });

function table(size: number, reals: number[]): Uint32Array {
  const t = new Uint32Array(size);
  for (let i = 0; i < size; i++) t[i] = reals[i % reals.length]!;
  return t;
}

/** A director with `services` services of `realsPer` realservers and `tableSize`-slot tables. */
async function build(o: { services: number; realsPer: number; tableSize: number; flows: number; maxConns?: number }): Promise<{ h: BenchDirector; walk: FlowWalk; realsPer: number }> {
  const h = await BenchDirector.load({
    sizes: {
      maxServices: Math.max(16, o.services), maxReals: Math.max(64, o.services * o.realsPer),
      maxConns: o.maxConns ?? 262144, maxPersist: 1024, maxFrags: 1024,
    },
  });
  h.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 1 });
  const n = o.services * o.realsPer;
  for (let first = 0; first < n; first += 4096) {
    const reals = Array.from({ length: Math.min(4096, n - first) }, (_, i) => realOf(first + i));
    h.setRealsBatch(first, reals, (idx) => Math.floor(idx / o.realsPer));
  }
  h.setServices(Array.from({ length: o.services }, (_, s) => ({
    s: { proto: 'tcp' as const, vip: vipOf(s), port: 80 }, svcId: s,
    table: table(o.tableSize, Array.from({ length: o.realsPer }, (__, i) => s * o.realsPer + i)),
  })));
  return { h, walk: { ...IPV4_FLOW, mod: o.flows, ndst: o.services }, realsPer: o.realsPer };
}

async function curve(wrap: Wrapper, drop: number, axis: string, label: string, unit: string, note: string,
  configs: Config[], opts: { rounds: number; repeat: number; keep?: boolean }): Promise<ScaleCurve> {
  const f = frame();
  for (const c of configs) {
    // Establish the working set: every walked flow entered in the connection table as the
    // control plane writes entries (a pass of SYNs would fill only the SYN_RECV slots, and a lone
    // ACK is a stray until seen again a second later).
    const e = c.establish ?? c.walk;
    c.h.fillWalk(e.mod!, e.ndst ?? 0, { saddr: CLIENT, daddr: [10, 1, 0, 0], dport: 80 }, c.realsPer);
  }
  const net: number[][] = configs.map(() => []);
  for (let r = 0; r < opts.rounds; r++) {
    configs.forEach((c, i) => {
      const over = wrap.run('newflow', drop, f, opts.repeat, c.walk).ns;
      const run = wrap.run('newflow', c.h.progFd, f, opts.repeat, c.walk);
      if (run.retval !== XdpAction.TX) throw new Error(`scaling ${axis}=${c.x}: XDP action ${run.retval}`);
      net[i]!.push(run.ns - over + dropNs(drop, f, opts.repeat));
    });
  }
  const points = configs.map((c, i) => {
    const s = summarize(net[i]!);
    const ratios = net[i]!.map((v, r) => v / net[0]![r]!);
    return { x: c.x, medianNs: s.median, minNs: s.min, maxNs: s.max, ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios) };
  });
  for (const c of configs) {
    const k = c.h.counters();
    if (k.CONN_HIT === 0n) throw new Error(`scaling ${axis}=${c.x}: no connection hits`);
    // Every measured packet is an established flow's (a stray or a new flow would be another case).
    const other = (k.CONN_STRAY ?? 0n) + (k.CONN_NEW ?? 0n);
    if (other * 100n > k.CONN_HIT) throw new Error(`scaling ${axis}=${c.x}: ${other} packets were strays or new flows against ${k.CONN_HIT} hits`);
    if (!opts.keep) c.h.close();
  }
  return { axis, label, unit, target: 1.2, points, note };
}

/** Bare XDP_DROP cost in a repeat loop: added back so figures include the test-run loop, as the
 *  data-plane table's do (overhead = wrapped(drop) - drop). */
function dropNs(drop: number, f: Buffer, repeat: number): number {
  return native().progTestRun(drop, f, { repeat, dataSizeOut: 2048 }).duration;
}

export async function runScalingBench(opts: { rounds: number; perRound: number; short?: boolean }): Promise<ScaleCurve[]> {
  const n = native();
  const floors = new n.BpfObject();
  floors.open(new URL('../../bpf/floors.o', import.meta.url).pathname);
  await floors.load();
  const drop = floors.progFd('floor_drop');
  const wrap = await loadWrapper();
  const o = { rounds: opts.rounds, repeat: opts.perRound * 20 };
  const K = opts.short ? 256 : 4096;
  const out: ScaleCurve[] = [];

  // Services configured (N), traffic to one of them; then traffic spread over all N.
  const services = opts.short ? [1, 10] : [1, 10, 100, 1000, 10000];
  const sc: Config[] = [];
  const sa: Config[] = [];
  for (const x of services) {
    const b = await build({ services: x, realsPer: 2, tableSize: 251, flows: K });
    sc.push({ x, h: b.h, walk: { ...b.walk, ndst: 1 }, realsPer: b.realsPer });
    sa.push({ x, h: b.h, walk: b.walk, realsPer: b.realsPer });
  }
  // The same directors for both curves: first traffic to one service, then to all of them.
  out.push(await curve(wrap, drop, 'services', 'virtual services configured', 'services', `N services of 2 realservers (251-slot tables), ${K} established flows to one of them`, sc, { ...o, keep: true }));
  out.push(await curve(wrap, drop, 'services-active', 'virtual services with traffic', 'services', `${K} established flows spread over all N services (flow i to service i mod N)`, sa, o));

  const reals = opts.short ? [2, 10] : [2, 10, 100, 1000];
  const rc: Config[] = [];
  for (const x of reals) rc.push({ x, ...(await build({ services: 1, realsPer: x, tableSize: 65537, flows: K })) });
  out.push(await curve(wrap, drop, 'reals', 'realservers per service', 'realservers', `one service, 65537-slot table, ${K} established flows`, rc, o));

  // Connection table occupancy: C live entries, packets from a hot set of 1,000 of them.
  const conns = opts.short ? [1000, 4000] : [1000, 10000, 100000, 1000000];
  const HOT = 1000;
  const cc: Config[] = [];
  for (const x of conns) {
    const b = await build({ services: 1, realsPer: 2, tableSize: 251, flows: HOT, maxConns: Math.ceil(x * 1.25) });
    cc.push({ x, ...b, establish: { ...b.walk, mod: x } });
  }
  out.push(await curve(wrap, drop, 'conns', 'live connection entries', 'entries', `one service; C entries live (table sized 1.25 C), packets from ${HOT} of those flows`, cc, o));
  // The same, with every live flow sending: the working set is the whole table.
  const cw: Config[] = [];
  for (const x of conns) cw.push({ x, ...(await build({ services: 1, realsPer: 2, tableSize: 251, flows: x, maxConns: Math.ceil(x * 1.25) })) });
  out.push(await curve(wrap, drop, 'conns-active', 'active flows (all live entries sending)', 'flows', 'one service; packets walk all C flows in turn, so every lookup misses the CPU caches once C outgrows them', cw, o));

  const sizes = opts.short ? [251, 4093] : [251, 1021, 4093, 16381, 65537];
  const tc: Config[] = [];
  for (const x of sizes) tc.push({ x, ...(await build({ services: 1, realsPer: 2, tableSize: x, flows: K })) });
  out.push(await curve(wrap, drop, 'table', 'lookup table size', 'slots', `one service, 2 realservers, ${K} established flows (established flows do not read the table)`, tc, o));

  wrap.close();
  floors.close();
  return out;
}
