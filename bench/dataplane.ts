/**
 * Data plane cost per packet through BPF_PROG_TEST_RUN, as ratios to floor programs measured in
 * the same run (these machines are shared and noisy: only ratios mean anything).
 *
 * Programs that leave the frame's length alone (pass, drop, MAC rewrite, DR) run with a repeat
 * count: the kernel's average over the loop. Encapsulating programs must see the original frame
 * every time, so they run once per BPF_PROG_TEST_RUN call with a fresh copy (progTestRunEach),
 * and new-flow cases use a different flow each call; such single runs carry a fixed timing
 * overhead, measured in the same run as (single-run XDP_DROP - repeated XDP_DROP) and
 * subtracted. Cases are interleaved over rounds; each figure is the median of round medians.
 */
import { native } from '../src/native/index.js';
import { clientPacket, ether, ipv4, TCP } from '../test/lib/frames.js';
import { DirectorHarness } from '../test/lib/director.js';
import { ABI } from '../src/abi/generated.js';

export interface CaseResult { name: string; floor?: string; medianNs: number; minNs: number; maxNs: number; ratio?: number; target?: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function runDataplaneBench(opts: { rounds: number; perRound: number }): Promise<CaseResult[]> {
  const n = native();
  const floors = new n.BpfObject();
  floors.open(new URL('../../bpf/floors.o', import.meta.url).pathname);
  await floors.load();
  const h = await DirectorHarness.load();
  h.reset();
  h.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 1, tunMtu: 1500, ttl: 64 });
  h.setReal(0, { addr: '192.168.1.10', mac: '02:00:00:00:01:0a', method: 'dr' });
  h.setReal(1, { addr: '192.168.1.11', mac: '02:00:00:00:01:0b', method: 'tun' });
  h.setReal(2, { addr: '2001:db8:1::10', mac: '02:00:00:00:01:0c', method: 'tun' });
  h.setReal(3, { addr: '2001:db8:1::11', mac: '02:00:00:00:01:0d', method: 'dr' });
  const table = (i: number) => Array.from({ length: 65537 }, () => i);
  h.setService({ proto: 'tcp', vip: '10.0.0.1', port: 80 }, 0, table(0));
  h.setService({ proto: 'tcp', vip: '10.0.0.2', port: 80 }, 1, table(1));
  h.setService({ proto: 'tcp', vip: '2001:db8::2', port: 80 }, 2, table(2));
  h.setService({ proto: 'udp', vip: '10.0.0.3', port: 53, flags: ABI.LVS_SVC_F_OPS }, 3, table(0));

  const ack = (dst: string, sport = 1000) => clientPacket(dst.includes(':') ? '2001:db8:100::7' : '198.51.100.7', dst, { proto: 'tcp', sport, dport: 80, flags: TCP.ACK, payload: Buffer.alloc(22) });
  // Establish the flows first, so the measured packets hit the connection table.
  for (const d of ['10.0.0.1', '10.0.0.2', '2001:db8::2']) h.run(ack(d));
  const quoted = Buffer.from(ack('10.0.0.1').subarray(14, 14 + 48));
  quoted.writeUInt32BE(0x0a000001, 12); // VIP as source, client as destination: reversed
  quoted.writeUInt32BE(0xc6336407, 16);
  quoted.writeUInt16BE(80, 20); quoted.writeUInt16BE(1000, 22);
  const icmpFrame = ether(0x0800, ipv4('203.0.113.1', '10.0.0.1', Buffer.concat([Buffer.from([3, 4, 0, 0, 0, 0, 5, 0x78]), quoted]), { proto: 1 }));

  type Mode = 'repeat' | 'each' | 'fresh';
  type Case = { name: string; prog: number; frame: () => Buffer; floor?: string; target?: number; mode: Mode };
  const f = (name: string) => floors.progFd(name);
  let sport = 2000;
  const cases: Case[] = [
    { name: 'floor: XDP_PASS', prog: f('floor_pass'), frame: () => ack('10.9.9.9'), mode: 'repeat' },
    { name: 'floor: XDP_DROP', prog: f('floor_drop'), frame: () => ack('10.9.9.9'), mode: 'repeat' },
    { name: 'single-run XDP_DROP (overhead probe)', prog: f('floor_drop'), frame: () => ack('10.9.9.9'), mode: 'each' },
    { name: 'floor: parse + swap MACs + XDP_TX', prog: f('floor_swap_tx'), frame: () => ack('10.0.0.1'), mode: 'repeat' },
    { name: 'floor: parse + push IPv4 + XDP_TX', prog: f('floor_push_ipv4_tx'), frame: () => ack('10.0.0.2'), mode: 'each' },
    { name: 'non-VIP packet (pass)', prog: h.progFd, frame: () => ack('10.9.9.9'), floor: 'floor: XDP_PASS', target: 1.3, mode: 'repeat' },
    { name: 'established DR flow', prog: h.progFd, frame: () => ack('10.0.0.1'), floor: 'floor: parse + swap MACs + XDP_TX', target: 1.5, mode: 'repeat' },
    { name: 'established Tun flow (IPv4 in IPv4)', prog: h.progFd, frame: () => ack('10.0.0.2'), floor: 'floor: parse + push IPv4 + XDP_TX', target: 1.5, mode: 'each' },
    { name: 'established Tun flow (IPv6 in IPv6)', prog: h.progFd, frame: () => ack('2001:db8::2'), floor: 'floor: parse + push IPv4 + XDP_TX', target: 1.5, mode: 'each' },
    { name: 'new flow (SYN: conn miss, table, insert)', prog: h.progFd, frame: () => clientPacket('198.51.100.8', '10.0.0.1', { proto: 'tcp', sport: (sport = (sport + 1) & 0xffff), dport: 80, flags: TCP.SYN }), floor: 'floor: parse + swap MACs + XDP_TX', target: 3, mode: 'fresh' },
    { name: 'one-packet-scheduling UDP', prog: h.progFd, frame: () => clientPacket('198.51.100.7', '10.0.0.3', { proto: 'udp', sport: 5, dport: 53 }), floor: 'floor: parse + swap MACs + XDP_TX', mode: 'repeat' },
    { name: 'ICMP error for a flow', prog: h.progFd, frame: () => icmpFrame, floor: 'floor: parse + swap MACs + XDP_TX', mode: 'repeat' },
  ];
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let r = 0; r < opts.rounds; r++) {
    for (const c of cases) {
      let m: number;
      if (c.mode === 'fresh') {
        const durs = [];
        for (let i = 0; i < opts.perRound; i++) durs.push(n.progTestRun(c.prog, c.frame(), { dataSizeOut: 2048 }).duration);
        m = median(durs);
      } else if (c.mode === 'each') {
        m = median(Array.from(n.progTestRunEach(c.prog, c.frame(), opts.perRound, { dataSizeOut: 2048 })));
      } else {
        m = n.progTestRun(c.prog, c.frame(), { repeat: opts.perRound * 20, dataSizeOut: 2048 }).duration;
      }
      samples.get(c.name)!.push(m);
    }
  }
  const probe = median(samples.get('single-run XDP_DROP (overhead probe)')!);
  const overhead = Math.max(0, probe - median(samples.get('floor: XDP_DROP')!));
  const results: CaseResult[] = cases.filter((c) => c.mode !== 'each' || !c.name.startsWith('single-run')).map((c) => {
    const s = samples.get(c.name)!.map((x) => (c.mode === 'repeat' ? x : x - overhead));
    return { name: c.name, floor: c.floor, target: c.target, medianNs: median(s), minNs: Math.min(...s), maxNs: Math.max(...s) };
  });
  for (const r of results) {
    if (!r.floor) continue;
    r.ratio = r.medianNs / results.find((x) => x.name === r.floor)!.medianNs;
  }
  const forwarded = h.counters();
  h.close();
  floors.close();
  if (forwarded.ICMP_ERR_FWD === 0n) throw new Error('bench: the ICMP case was not forwarded');
  if (forwarded.FWD_TUN === 0n || forwarded.FWD_DR === 0n) throw new Error('bench: DR / Tun cases were not forwarded');
  return results;
}
