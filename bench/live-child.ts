/**
 * Runs inside the benchmark's own network namespace (bench/live.ts starts it with
 * `ip netns exec`): veth pairs, one per case, the program under test attached on the receiving
 * end in native or generic (skb) mode, or no program and the kernel's own forwarding with an
 * nftables DNAT rule; a counting program (native) on the sending end; frames injected with
 * BPF_PROG_TEST_RUN live-frames mode. Prints one JSON line with the results.
 *
 * Generic mode and the stack need the receiving veth to take frames sent by XDP_TX
 * (ndo_xdp_xmit): without a native program that requires the veth's NAPI, which GRO switches on.
 * The frames all carry the same sequence number, so GRO never merges two of them.
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
/** only: the cases whose name contains it and the cases they are compared with ('=NAME': that case alone), to profile one path. */
const opts = JSON.parse(process.argv[2] ?? '{}') as { rounds: number; frames: number; batch: number; only?: string };

/** mode: how the receiving end handles the frames; against: another case this one is compared with. */
export interface LiveSample { name: string; mode: LiveMode; floor?: string; against?: string; counted: number[]; seconds: number[]; sent: number[]; action: string }
export type LiveMode = 'native' | 'generic' | 'stack';

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
const SWAP = 'floor: parse + swap MACs + XDP_TX';
const SWAP_G = `${SWAP}, generic`;
const NFT = 'nftables DNAT (kernel forwarding, conntrack; no XDP)';
interface LiveCase { name: string; prog?: number; frame: Buffer; action: string; mode: LiveMode; floor?: string; against?: string }
const ALL: LiveCase[] = [
  { name: SWAP, prog: floors.progFd('floor_swap_tx'), frame: frame('10.0.0.1'), action: 'tx', mode: 'native' },
  { name: 'lvs-xdp DR (established flow)', prog: h.progFd, frame: frame('10.0.0.1'), action: 'tx', mode: 'native', floor: SWAP },
  { name: 'floor: parse + push IPv4 + XDP_TX', prog: floors.progFd('floor_push_ipv4_tx'), frame: frame('10.0.0.2'), action: 'tx', mode: 'native' },
  { name: 'lvs-xdp Tun IPv4 in IPv4 (established flow)', prog: h.progFd, frame: frame('10.0.0.2'), action: 'tx', mode: 'native', floor: 'floor: parse + push IPv4 + XDP_TX' },
  { name: 'receiver drops (XDP_DROP): injection bound', prog: floors.progFd('floor_drop'), frame: frame('10.0.0.1'), action: 'drop', mode: 'native' },
  // Generic (skb) mode, the mode of NICs without native XDP: the same programs after the kernel
  // has built an skb, against the kernel's own forwarding with nftables DNAT.
  { name: SWAP_G, prog: floors.progFd('floor_swap_tx'), frame: frame('10.0.0.1'), action: 'tx', mode: 'generic' },
  { name: 'lvs-xdp DR (established flow), generic', prog: h.progFd, frame: frame('10.0.0.1'), action: 'tx', mode: 'generic', floor: SWAP_G, against: NFT },
  { name: NFT, frame: frame('10.0.0.1'), action: 'tx', mode: 'stack' },
  { name: 'receiver drops (XDP_DROP), generic: injection bound', prog: floors.progFd('floor_drop'), frame: frame('10.0.0.1'), action: 'drop', mode: 'generic' },
];
const alone = opts.only?.startsWith('=') ? opts.only.slice(1) : undefined;
const picked = ALL.filter((c) => opts.only === undefined || (alone === undefined ? c.name.includes(opts.only) : c.name === alone));
const cases = ALL.filter((c) => picked.includes(c) || (alone === undefined && picked.some((p) => p.floor === c.name || p.against === c.name)));
const links: number[] = [];
const sysctl = (...kv: string[]) => execFileSync('sysctl', ['-qw', ...kv], { stdio: ['ignore', 'ignore', 'inherit'] });
const pairs = cases.map((c, i) => {
  const gen = `lvsbg${i}`, rcv = `lvsbr${i}`;
  ip('link', 'add', gen, 'type', 'veth', 'peer', 'name', rcv);
  if (c.mode !== 'native') execFileSync('ethtool', ['-K', rcv, 'gro', 'on'], { stdio: ['ignore', 'ignore', 'inherit'] });
  ip('link', 'set', gen, 'up');
  ip('link', 'set', rcv, 'up');
  const gi = n.ifNameToIndex(gen), ri = n.ifNameToIndex(rcv);
  links.push(n.xdpAttachLink(live.progFd('live_count'), gi, 'native').linkFd);
  if (c.prog !== undefined) links.push(n.xdpAttachLink(c.prog, ri, c.mode).linkFd);
  else {
    // The kernel forwards: the frames' destination MAC is the receiving veth's, VIP:80 is
    // DNATed to the realserver, whose neighbour entry points back at the sending veth.
    const genMac = execFileSync('cat', [`/sys/class/net/${gen}/address`], { encoding: 'utf8' }).trim();
    ip('link', 'set', rcv, 'address', '02:00:00:00:00:01');
    ip('addr', 'add', '192.168.1.1/24', 'dev', rcv);
    ip('neigh', 'replace', '192.168.1.10', 'lladdr', genMac, 'dev', rcv, 'nud', 'permanent');
    sysctl('net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', `net.ipv4.conf.${rcv}.rp_filter=0`, 'net.ipv4.conf.all.send_redirects=0', `net.ipv4.conf.${rcv}.send_redirects=0`);
    execFileSync('nft', ['-f', '-'], { input: `table ip lvsb_live { chain pre { type nat hook prerouting priority dstnat; ip daddr 10.0.0.1 tcp dport 80 dnat to 192.168.1.10; }; }\n`, stdio: ['pipe', 'ignore', 'inherit'] });
  }
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
const samples: LiveSample[] = cases.map((c) => ({ name: c.name, mode: c.mode, ...(c.floor ? { floor: c.floor } : {}), ...(c.against ? { against: c.against } : {}), counted: [], seconds: [], sent: [], action: c.action }));
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
if (cases.some((c) => c.mode === 'stack')) execFileSync('nft', ['delete', 'table', 'ip', 'lvsb_live']);
process.stdout.write(JSON.stringify({ samples, director: { FWD_DR: String(k.FWD_DR), FWD_TUN: String(k.FWD_TUN), CONN_HIT: String(k.CONN_HIT), CONN_NEW: String(k.CONN_NEW) } }) + '\n');
