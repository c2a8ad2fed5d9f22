/**
 * `lvs-xdp bench`: the per-packet cost of the running configuration's program, as ratios to the
 * floor programs (bpf/floors.o) measured in the same run with BPF_PROG_TEST_RUN.
 *
 * Why a private copy and not the pinned program: BPF_PROG_TEST_RUN runs a program with its own
 * maps. On the pinned director a test run counts in lvs_counters and the service and
 * realserver statistics, inserts into lvs_conns (a new flow, or a lone ACK into lvs_strays) and
 * into the least-connection counts, and with kernel.bpf_stats_enabled adds to the program's
 * run_time_ns/run_cnt: all of which operators read (`-L --stats`, `counters`, metrics). So the
 * benchmark loads the same object with the running director's sizes and knobs, and gives it the
 * running configuration by sharing the maps the packet path only reads (services, lookup
 * tables, realservers, settings, VIP filter, accepted MACs, marks, destinations, egress ports:
 * READ_ONLY_MAPS); every map the packet path writes is the copy's own, created empty, and goes
 * with it. The copy's program tag is compared with the running program's: equal tags mean the
 * same instructions (an older program still running after a package upgrade is reported).
 *
 * Cases, in the data-plane benchmark's method (bench/dataplane.ts): each figure is the kernel's
 * average over a repeat loop; programs that rewrite the frame run behind the repeat wrapper
 * (bench/bpf/wrap.bpf.c: restores the frame, and for new flows gives it the next source port),
 * whose own cost, measured in front of XDP_DROP in the same round, is subtracted. A figure is
 * the median of the rounds, a ratio the median of per-round ratios.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { inInstall } from '../install-root.js';
import { BpfMap, BpfObject, XdpAction, closeFd, ifIndex, openPinned, progInfo, testRun } from '../native/index.js';
import { loadDirector, type LoadedDirector } from '../dataplane/loader.js';
import { COUNTERS } from '../abi/generated.js';
import { PROG_PIN } from '../director/lifecycle.js';
import { readSnapshot, type Snapshot } from '../director/snapshot.js';
import type { StatePaths } from '../director/paths.js';
import { formatAddrPort } from '../model/address.js';
import type { VirtualService } from '../model/types.js';
import { ConfigError, ExitCode, LvsError, NotAttachedError, StateError } from '../errors.js';
import { flowOffsets, tcpFrame, TCP_ACK, TCP_SYN } from './frame.js';
import { Wrapper } from './wrap.js';
import type { LiveReport } from './live.js';

/** Maps the packet path only looks up (checked against bpf/ when this list was made): shared. */
export const READ_ONLY_MAPS = [
  'lvs_services', 'lvs_tables', 'lvs_reals', 'lvs_cfg', 'lvs_tx_ports', 'lvs_vip_filter',
  'lvs_l2_ifs', 'lvs_l2_addrs', 'lvs_fwmarks', 'lvs_dests',
] as const;

export const FLOORS_OBJECT = inInstall('bpf', 'floors.o');
export const WRAP_OBJECT = inInstall('bench', 'bpf', 'wrap.o');
/** The live-rate sender and counter (bench/bpf/live.bpf.c), shipped like the wrapper. */
export const LIVE_OBJECT = inInstall('bench', 'bpf', 'live.o');

export const CLIENT4 = '198.51.100.7', CLIENT6 = '2001:db8:100::7';
const CLIENT_MAC = '02:00:00:00:00:fe';
/** Non-VIP destinations for the pass case (documentation prefixes; another is taken if a VIP). */
const OTHER4 = ['192.0.2.1', '192.0.2.2'], OTHER6 = ['2001:db8:ffff::1', '2001:db8:ffff::2'];

export type CaseName = 'established' | 'new flow' | 'pass';
export const ACTION_NAMES = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'];

export interface BenchRow {
  case: CaseName;
  /** What the packet is, in words. */
  packet: string;
  /** The program's verdict on it. */
  action: string;
  ns: number; nsMin: number; nsMax: number;
  floor: string; floorNs: number;
  ratio: number; ratioMin: number; ratioMax: number;
  /** What one core forwards at this cost: 1000 / (ns - the test-run loop's own cost). */
  mpps: number;
}

export interface BenchReport {
  interface: string;
  service: string;
  method: string;
  program: { id: number; tag: string; copyTag: string; sameCode: boolean };
  rounds: number; repeat: number;
  /** The test-run loop's own cost per packet (XDP_DROP), taken off before Mpps. */
  loopNs: number;
  floors: { name: string; ns: number }[];
  rows: BenchRow[];
  /** The connection table of the copy was filled before new flows were measured. */
  tableFilled: number;
  /** --live: the rate between two named interfaces (src/bench/live.ts). */
  live?: LiveReport;
}

export interface BenchOptions { rounds: number; repeat: number; service?: string }

/** The benchmark's choice of virtual service: the named one, else the first TCP service with a live realserver. */
export function pickService(services: readonly VirtualService[], want?: string): VirtualService {
  const usable = (s: VirtualService) => s.fwmark === undefined && s.protocol === 'tcp' && s.port !== 0 && !s.ops && s.realservers.some((r) => r.weight > 0);
  if (want !== undefined) {
    const s = services.find((x) => x.fwmark === undefined && (formatAddrPort(x.vip, x.port) === want || `${x.protocol}/${formatAddrPort(x.vip, x.port)}` === want));
    if (!s) throw new ConfigError(`no virtual service ${want}`, { field: '--service', hint: `services: ${services.filter((x) => x.fwmark === undefined).map((x) => formatAddrPort(x.vip, x.port)).join(', ') || 'none'}` });
    if (!usable(s)) throw new ConfigError(`${want} cannot be measured: the benchmark needs a TCP service on one port with a realserver of weight > 0`, { field: '--service' });
    return s;
  }
  const s = services.find(usable);
  if (!s) {
    throw new ConfigError('no virtual service to measure: the benchmark needs a TCP service on one port with a realserver of weight > 0', {
      hint: 'add one, e.g. lvs-xdp -A -t VIP:80 -s mh; lvs-xdp -a -t VIP:80 -r RIP -g',
    });
  }
  return s;
}


function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Sum over CPUs of every lvs_counters entry of a loaded director, by name (non-zero only). */
function counterNames(d: LoadedDirector): string[] {
  const m = BpfMap.fromFd(d.maps.lvs_counters, { owned: false });
  return COUNTERS.filter((c) => (m.lookupPerCpu(u32(c.index)) ?? []).some((b) => b.readBigUInt64LE(0) > 0n)).map((c) => c.name);
}

/** Loads the private copy: the running director's sizes and knobs, its read-only maps (`share`) shared. */
export async function privateCopy(paths: StatePaths, snap: Snapshot, share: readonly string[] = READ_ONLY_MAPS): Promise<LoadedDirector> {
  const shared = new Map<string, BpfMap>();
  try {
    for (const m of share) {
      const pin = `${paths.pinDir}/${m}`;
      if (!existsSync(pin)) throw new StateError(`the running director has no ${m} pinned at ${pin}`, { hint: 'lvs-xdp status shows the state; lvs-xdp upgrade completes a half-done upgrade' });
      shared.set(m, BpfMap.fromPin(pin));
    }
    return await loadDirector({ sizes: snap.sizes, knobs: snap.knobs, reuse: Object.fromEntries([...shared].map(([k, v]) => [k, v.liveFd()])) });
  } finally {
    for (const m of shared.values()) m.close(); // libbpf holds its own duplicates
  }
}

/** The interface's MAC, from netlink (sysfs is the host's under `nsenter --net`). */
export function macOf(ifname: string): string {
  try {
    const [l] = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'dev', ifname], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { address?: string }[];
    if (l?.address) return l.address;
  } catch {
    // below
  }
  throw new StateError(`interface ${ifname} is not in this network namespace`, { hint: 'run lvs-xdp bench where the director is attached' });
}

export function runningSnapshot(paths: StatePaths): Snapshot {
  const snap = readSnapshot(paths.snapshot);
  if (!snap) throw new NotAttachedError(`no director is attached (no state at ${paths.snapshot})`, { hint: 'attach one with `lvs-xdp attach IFACE`' });
  return snap;
}

export async function benchRunningProgram(paths: StatePaths, o: BenchOptions): Promise<BenchReport> {
  const snap = runningSnapshot(paths);
  const ifname = Object.keys(snap.interfaces)[0];
  if (ifname === undefined) throw new NotAttachedError('the director is loaded but attached to no interface');
  const ifindex = ifIndex(ifname);
  const dirMac = macOf(ifname);
  const svc = pickService(snap.applied.config.services, o.service);
  const method = svc.realservers.find((r) => r.weight > 0)!.method;
  const v6 = svc.vip.includes(':');
  const client = v6 ? CLIENT6 : CLIENT4;
  const vips = new Set(snap.applied.config.services.map((s) => s.vip));
  const other = (v6 ? OTHER6 : OTHER4).find((a) => !vips.has(a))!;
  const frame = (dst: string, sport: number, flags: number, src = client) => tcpFrame({ src, dst, sport, dport: svc.port, flags, dstMac: dirMac, srcMac: CLIENT_MAC });

  const progFd = openPinned(`${paths.pinDir}/${PROG_PIN}`);
  let running: { id: number; tag: string };
  try {
    running = progInfo(progFd);
  } finally {
    closeFd(progFd);
  }

  const copy = await privateCopy(paths, snap);
  let floors: BpfObject | undefined;
  let wrap: Wrapper | undefined;
  try {
    floors = await BpfObject.open(FLOORS_OBJECT);
    wrap = await Wrapper.load(WRAP_OBJECT);
    const copyTag = progInfo(copy.progFd).tag;
    const P = copy.progFd;
    const run1 = (f: Buffer) => testRun(P, f, { dataSizeOut: f.length + 256, ingressIfindex: ifindex }).retval;
    const est = frame(svc.vip, 1000, TCP_ACK);
    const syn = frame(svc.vip, 1, TCP_SYN, v6 ? '2001:db8:100::8' : '198.51.100.8');
    const pass = frame(other, 1000, TCP_ACK);
    const establish = () => { run1(frame(svc.vip, 1000, TCP_SYN)); return run1(est); };

    // A full connection table, as on a busy director: new flows then evict (the costly case).
    const fill = copy.sizes.maxConns + 1024;
    wrap.run('newflow', P, syn, fill, flowOffsets(v6), ifindex);
    const verdict = { established: establish(), 'new flow': wrap.run('newflow', P, syn, 1, flowOffsets(v6), ifindex).retval, pass: run1(pass) };
    const forwarded = (a: number) => a === XdpAction.TX || a === XdpAction.REDIRECT;
    if (!forwarded(verdict.established) || !forwarded(verdict['new flow']) || verdict.pass !== XdpAction.PASS) {
      throw new LvsError(`the director does not forward the benchmark's packets to ${formatAddrPort(svc.vip, svc.port)} on ${ifname} (established: ${ACTION_NAMES[verdict.established]}, new flow: ${ACTION_NAMES[verdict['new flow']]}, non-VIP: ${ACTION_NAMES[verdict.pass]}; counted: ${counterNames(copy).join(', ') || 'nothing'})`, 'BENCH', ExitCode.FAILURE, {
        hint: 'lvs-xdp status shows the accepted MACs and lvs-xdp -L -n the realservers; --service VIP:PORT picks another service',
      });
    }

    const f = (n: string) => floors!.progFd(n);
    const swap = 'parse + swap MACs + XDP_TX', push = 'parse + push IPv4 + XDP_TX', passF = 'XDP_PASS';
    const estFloor = method === 'tun' && !v6 ? push : swap;
    const floorFrame = frame(svc.vip, 1000, TCP_ACK);
    // Each series: kernel ns per packet, one value per round.
    const S: Record<string, number[]> = {};
    const add = (k: string, v: number) => (S[k] ??= []).push(v);
    const check = (what: string, got: number, want: number) => {
      if (got !== want) throw new LvsError(`bench: ${what} returned ${ACTION_NAMES[got] ?? got}, expected ${ACTION_NAMES[want] ?? want}`, 'BENCH');
    };
    const rep = (prog: number, fr: Buffer) => testRun(prog, fr, { repeat: o.repeat, dataSizeOut: fr.length + 256, ingressIfindex: ifindex });
    for (let r = 0; r < o.rounds; r++) {
      add('drop', rep(f('floor_drop'), floorFrame).duration);
      add('wrap restore', wrap.run('restore', f('floor_drop'), floorFrame, o.repeat, undefined, ifindex).ns);
      add('wrap newflow', wrap.run('newflow', f('floor_drop'), syn, o.repeat, flowOffsets(v6), ifindex).ns);
      add(passF, rep(f('floor_pass'), pass).duration);
      add(swap, rep(f('floor_swap_tx'), floorFrame).duration);
      if (estFloor === push) add(push, wrap.run('restore', f('floor_push_ipv4_tx'), floorFrame, o.repeat, undefined, ifindex).ns);
      const p = rep(P, pass);
      check('the non-VIP packet', p.retval, verdict.pass);
      add('pass', p.duration);
      // New flows evict: the measured flow is established again every round.
      check('the established flow\'s SYN and ACK', establish(), verdict.established);
      const e = wrap.run('restore', P, est, o.repeat, undefined, ifindex);
      check('the established flow', e.retval, verdict.established);
      add('established', e.ns);
      const n = wrap.run('newflow', P, syn, o.repeat, flowOffsets(v6), ifindex);
      check('the new flow', n.retval, verdict['new flow']);
      add('new flow', n.ns);
    }
    // Wrapped series lose the wrapper's own cost (wrapped drop - drop), round by round.
    const net = (k: string, mode: 'repeat' | 'restore' | 'newflow') => S[k]!.map((x, i) => (mode === 'repeat' ? x : x - Math.max(0, S[`wrap ${mode}`]![i]! - S.drop![i]!)));
    const series: Record<string, number[]> = {
      drop: S.drop!, [passF]: S[passF]!, [swap]: S[swap]!, ...(S[push] ? { [push]: net(push, 'restore') } : {}),
      pass: S.pass!, established: net('established', 'restore'), 'new flow': net('new flow', 'newflow'),
    };
    const loopNs = median(series.drop!);
    const describe: Record<CaseName, string> = {
      established: `established ${method.toUpperCase()} flow (TCP ACK to ${formatAddrPort(svc.vip, svc.port)})`,
      'new flow': `new flow (SYN, connection table full: ${fill.toLocaleString('en')} inserted first)`,
      pass: `non-VIP packet (TCP to ${other})`,
    };
    const floorOf: Record<CaseName, string> = { established: estFloor, 'new flow': swap, pass: passF };
    const rows = (['established', 'new flow', 'pass'] as CaseName[]).map((c): BenchRow => {
      const xs = series[c]!, fl = series[floorOf[c]]!;
      const ratios = xs.map((x, i) => x / fl[i]!);
      const ns = median(xs);
      return {
        case: c, packet: describe[c], action: ACTION_NAMES[verdict[c]]!,
        ns, nsMin: Math.min(...xs), nsMax: Math.max(...xs),
        floor: floorOf[c], floorNs: median(fl),
        ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios),
        mpps: 1000 / Math.max(ns - loopNs, ns / 100),
      };
    });
    return {
      interface: ifname, service: `${svc.protocol} ${formatAddrPort(svc.vip, svc.port)}`, method,
      program: { id: running.id, tag: running.tag, copyTag, sameCode: copyTag === running.tag },
      rounds: o.rounds, repeat: o.repeat, loopNs,
      floors: ['drop', passF, swap, ...(S[push] ? [push] : [])].map((k) => ({ name: k === 'drop' ? 'XDP_DROP (the test-run loop)' : k, ns: median(series[k]!) })),
      rows, tableFilled: fill,
    };
  } finally {
    wrap?.close();
    floors?.close();
    copy.obj.close();
  }
}
