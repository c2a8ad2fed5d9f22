/**
 * Runs inside the benchmark's own network namespace (bench/live.ts starts it with
 * `ip netns exec`): veth pairs, one per case, the program under test attached in native mode on
 * the receiving end, a counting program on the sending end, frames injected with
 * BPF_PROG_TEST_RUN live-frames mode. Prints one JSON line with the results.
 */
import { execFileSync } from 'node:child_process';
import { TestRunFlag, UpdateFlag } from '../src/native/index.js';
import { native as rawNative } from '../src/native/testing.js';
import { clientPacket, TCP } from '../test/lib/frames.js';
import { BenchDirector } from './lib/director.js';
import { setupBenchConfig } from './dataplane.js';
import { u32 } from './lib/director.js';
import { benchObject } from './lib/objects.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const n: any = rawNative();
const opts = JSON.parse(process.argv[2] ?? '{}') as { rounds: number; frames: number; batch: number };

export interface LiveSample { name: string; floor?: string; counted: number[]; seconds: number[]; sent: number[]; action: string }

const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] });
ip('link', 'set', 'lo', 'up');

const live = new n.BpfObject();
live.open(benchObject('live.o'));
await live.load();
const floors = new n.BpfObject();
floors.open(new URL('../../bpf/floors.o', import.meta.url).pathname);
await floors.load();
const h = await BenchDirector.load();
setupBenchConfig(h);
// The measured flows are established first (a SYN each): a lone ACK would be a stray until its
// flow shows up again a second later (lvs_strays).
for (const d of ['10.0.0.1', '10.0.0.2']) n.progTestRun(h.progFd, clientPacket('198.51.100.7', d, { proto: 'tcp', sport: 1000, dport: 80, flags: TCP.SYN }), { dataSizeOut: 2048 });

// 64-byte frames (60 + FCS on a wire would be 64): Ethernet + IPv4 + TCP + 10 bytes.
const frame = (dst: string) => clientPacket('198.51.100.7', dst, { proto: 'tcp', sport: 1000, dport: 80, flags: TCP.ACK, payload: Buffer.alloc(10) });
const cases = [
  { name: 'floor: parse + swap MACs + XDP_TX', prog: floors.progFd('floor_swap_tx'), frame: frame('10.0.0.1'), action: 'tx' },
  { name: 'lvs-xdp DR (established flow)', prog: h.progFd, frame: frame('10.0.0.1'), action: 'tx', floor: 'floor: parse + swap MACs + XDP_TX' },
  { name: 'floor: parse + push IPv4 + XDP_TX', prog: floors.progFd('floor_push_ipv4_tx'), frame: frame('10.0.0.2'), action: 'tx' },
  { name: 'lvs-xdp Tun IPv4 in IPv4 (established flow)', prog: h.progFd, frame: frame('10.0.0.2'), action: 'tx', floor: 'floor: parse + push IPv4 + XDP_TX' },
  { name: 'receiver drops (XDP_DROP): injection bound', prog: floors.progFd('floor_drop'), frame: frame('10.0.0.1'), action: 'drop' },
];
const links: number[] = [];
const pairs = cases.map((c, i) => {
  const gen = `lvsbg${i}`, rcv = `lvsbr${i}`;
  ip('link', 'add', gen, 'type', 'veth', 'peer', 'name', rcv);
  ip('link', 'set', gen, 'up');
  ip('link', 'set', rcv, 'up');
  const gi = n.ifNameToIndex(gen), ri = n.ifNameToIndex(rcv);
  links.push(n.xdpAttachLink(live.progFd('live_count'), gi, 'native').linkFd);
  links.push(n.xdpAttachLink(c.prog, ri, 'native').linkFd);
  return { gi, ri };
});
// The director's receive side of each pair accepts the frames' destination MAC.
h.acceptOn(pairs.filter((_, i) => cases[i]!.prog === h.progFd).map((p) => p.ri));

const counted = () => {
  const v: Buffer = n.mapLookup(live.mapFd('live_counted'), u32(0));
  let s = 0n;
  for (let i = 0; i < v.length; i += 8) s += v.readBigUInt64LE(i);
  return Number(s);
};
const samples: LiveSample[] = cases.map((c) => ({ name: c.name, floor: c.floor, counted: [], seconds: [], sent: [], action: c.action }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
for (let r = 0; r < opts.rounds; r++) {
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i]!;
    const tpl = Buffer.alloc(64);
    c.frame.copy(tpl);
    n.mapUpdate(live.mapFd('live_tpl'), u32(0), tpl, UpdateFlag.ANY);
    const before = counted();
    const t0 = process.hrtime.bigint();
    n.progTestRun(live.progFd('live_gen'), c.frame, { flags: TestRunFlag.XDP_LIVE_FRAMES, repeat: opts.frames, batchSize: opts.batch, ingressIfindex: pairs[i]!.gi });
    const t1 = process.hrtime.bigint();
    await sleep(5);
    samples[i]!.counted.push(counted() - before);
    samples[i]!.sent.push(opts.frames);
    samples[i]!.seconds.push(Number(t1 - t0) / 1e9);
  }
}
const k = h.counters();
for (const l of links) n.closeFd(l);
h.close();
live.close();
floors.close();
process.stdout.write(JSON.stringify({ samples, director: { FWD_DR: String(k.FWD_DR), FWD_TUN: String(k.FWD_TUN), CONN_HIT: String(k.CONN_HIT), CONN_NEW: String(k.CONN_NEW) } }) + '\n');
