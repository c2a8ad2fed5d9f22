/**
 * `lvs-xdp bench --live IFACE_A IFACE_B`: a live packet rate between two interfaces the operator
 * names, linked only to each other (a cable between two ports, or a veth pair). IFACE_A sends
 * (BPF_PROG_TEST_RUN live frames of bench/bpf/live.o's live_gen: an established flow of the
 * measured service, addressed to IFACE_B's MAC) and counts what comes back (live_count);
 * IFACE_B runs, in turns, the floor (parse + swap MACs + XDP_TX) and a private copy of the
 * running program, which forwards the flow back out of IFACE_B toward its realserver's MAC,
 * i.e. to IFACE_A. Both interfaces must be free of XDP programs: the running director is not
 * attached to them and is not touched (the copy's own connection table, counters and accepted
 * MACs; the configuration maps shared read-only, as in src/bench/program.ts). IFACE_A is
 * promiscuous meanwhile (forwarded frames carry the realserver's MAC); every program, link
 * and flag is removed afterwards, also on failure.
 */
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { BpfObject, TestRunFlag, XdpAction, XdpLink, ifIndex, testRun, xdpQuery } from '../native/index.js';
import { MapWriter } from '../director/writer.js';
import { syncAcceptedLocked } from '../director/lifecycle.js';
import type { StatePaths } from '../director/paths.js';
import { ConfigError, ExitCode, LvsError, StateError } from '../errors.js';
import { formatAddrPort } from '../model/address.js';
import { tcpFrame, TCP_ACK, TCP_SYN } from './frame.js';
import {
  ACTION_NAMES, CLIENT4, CLIENT6, FLOORS_OBJECT, LIVE_OBJECT, READ_ONLY_MAPS,
  macOf, pickService, privateCopy, runningSnapshot,
} from './program.js';

export interface LiveRow {
  name: string;
  /** Frames that came back to IFACE_A per second, in millions: median [min-max] over rounds. */
  mpps: number; mppsMin: number; mppsMax: number;
  /** Per-round ratio to the floor's rate in the same round (the copy's row only). */
  ratio?: number; ratioMin?: number; ratioMax?: number;
  /** Share of the frames sent that did not come back, over all rounds. */
  lostPct: number;
}

export interface LiveReport { sender: string; receiver: string; mode: string; service: string; rounds: number; frames: number; rows: LiveRow[] }

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function promisc(ifname: string): boolean {
  const [l] = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'dev', ifname], { encoding: 'utf8' })) as { flags?: string[] }[];
  return l?.flags?.includes('PROMISC') ?? false;
}

/** Refuses what the live rate must not use: one interface twice, or one that carries an XDP program. */
export function checkLiveInterfaces(paths: StatePaths, a: string, b: string): void {
  if (a === b) throw new ConfigError('the sender and the receiver must be two interfaces', { field: '--live' });
  const snap = runningSnapshot(paths);
  for (const name of [a, b]) {
    const q = xdpQuery(name);
    if (q.attachMode !== 'none') {
      throw new ConfigError(`${name} carries an XDP program (id ${q.progId})${name in snap.interfaces ? ': the running director' : ''}`, {
        field: '--live', hint: 'name two interfaces that no XDP program uses, linked only to each other (a cable between two ports, or a veth pair)',
      });
    }
  }
}

export async function liveRate(paths: StatePaths, o: { a: string; b: string; rounds: number; frames: number; service?: string }): Promise<LiveReport> {
  checkLiveInterfaces(paths, o.a, o.b);
  const snap = runningSnapshot(paths);
  if (!existsSync(LIVE_OBJECT)) throw new StateError(`the live-rate sender ${LIVE_OBJECT} is missing`, { hint: 'build it: make -C bench/bpf live.o (scripts/setup.sh does)' });
  const ia = ifIndex(o.a), ib = ifIndex(o.b);
  const macA = macOf(o.a), macB = macOf(o.b);
  const svc = pickService(snap.applied.config.services, o.service);
  const v6 = svc.vip.includes(':');
  const frame = (flags: number) => tcpFrame({ src: v6 ? CLIENT6 : CLIENT4, dst: svc.vip, sport: 1000, dport: svc.port, flags, dstMac: macB, srcMac: macA, payload: v6 ? 0 : 10 });

  // The copy accepts IFACE_B's MAC on IFACE_B: its accepted-MAC maps are its own.
  const copy = await privateCopy(paths, snap, READ_ONLY_MAPS.filter((m) => m !== 'lvs_l2_ifs' && m !== 'lvs_l2_addrs'));
  let floors: BpfObject | undefined, live: BpfObject | undefined;
  let linkA: XdpLink | undefined, linkB: XdpLink | undefined;
  const wasPromisc = promisc(o.a);
  try {
    syncAcceptedLocked(MapWriter.fromLoaded(copy), [{ ifindex: ib, mac: macB, egress: macB, kind: 'own' }]);
    const ack = frame(TCP_ACK);
    // The flow is established in the copy first (SYN, then ACK), as a client's would be.
    testRun(copy.progFd, frame(TCP_SYN), { dataSizeOut: 512, ingressIfindex: ib });
    const v = testRun(copy.progFd, ack, { dataSizeOut: 512, ingressIfindex: ib }).retval;
    if (v !== XdpAction.TX) {
      throw new LvsError(`the director's copy on ${o.b} answers the flow to ${formatAddrPort(svc.vip, svc.port)} with ${ACTION_NAMES[v] ?? v}, not XDP_TX`, 'BENCH', ExitCode.FAILURE, {
        hint: 'the live rate measures a DR or Tun service whose realserver is reached on the receiving interface; --service VIP:PORT picks another',
      });
    }
    floors = await BpfObject.open(FLOORS_OBJECT);
    live = await BpfObject.open(LIVE_OBJECT);
    const tpl = Buffer.alloc(64);
    ack.copy(tpl, 0, 0, 64);
    live.map('live_tpl').update(u32(0), tpl);
    const counted = live.map('live_counted');
    const count = (): number => (counted.lookupPerCpu(u32(0)) ?? []).reduce((s, b) => s + Number(b.readBigUInt64LE(0)), 0);
    if (!wasPromisc) execFileSync('ip', ['link', 'set', 'dev', o.a, 'promisc', 'on']);
    linkA = XdpLink.attach(live.progFd('live_count'), ia, 'auto');
    linkB = XdpLink.attach(floors.progFd('floor_swap_tx'), ib, 'auto');
    const progs = [
      { name: 'floor: parse + swap MACs + XDP_TX', fd: floors.progFd('floor_swap_tx') },
      { name: `lvs-xdp ${svc.realservers.find((r) => r.weight > 0)!.method.toUpperCase()} (established flow, private copy)`, fd: copy.progFd },
    ];
    const rates = progs.map(() => [] as number[]);
    const got = progs.map(() => 0);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    for (let r = 0; r < o.rounds; r++) {
      for (const [i, p] of progs.entries()) {
        linkB.update(p.fd);
        const before = count();
        const t0 = process.hrtime.bigint();
        testRun(live.progFd('live_gen'), ack, { flags: TestRunFlag.XDP_LIVE_FRAMES, repeat: o.frames, batchSize: 64, ingressIfindex: ia });
        const t1 = process.hrtime.bigint();
        await sleep(20); // frames still in flight on the wire or in a queue
        const n = count() - before;
        got[i]! += n;
        rates[i]!.push(n / (Number(t1 - t0) / 1e9) / 1e6);
      }
    }
    const rows = progs.map((p, i): LiveRow => {
      const xs = rates[i]!;
      const row: LiveRow = { name: p.name, mpps: median(xs), mppsMin: Math.min(...xs), mppsMax: Math.max(...xs), lostPct: 100 * (1 - got[i]! / (o.frames * o.rounds)) };
      if (i > 0) {
        const ratios = xs.map((x, k) => x / rates[0]![k]!);
        Object.assign(row, { ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios) });
      }
      return row;
    });
    return { sender: o.a, receiver: o.b, mode: linkB.mode, service: `${svc.protocol} ${formatAddrPort(svc.vip, svc.port)}`, rounds: o.rounds, frames: o.frames, rows };
  } finally {
    for (const l of [linkB, linkA]) {
      if (!l) continue;
      try {
        l.detach();
      } finally {
        l.close();
      }
    }
    if (!wasPromisc) execFileSync('ip', ['link', 'set', 'dev', o.a, 'promisc', 'off']);
    live?.close();
    floors?.close();
    copy.obj.close();
  }
}
