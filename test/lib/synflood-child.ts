// SYN flood generator for test/packet/synflood.test.ts, run inside the namespace:
//   node dist/test/lib/synflood-child.js IFACE DST_MAC VIP COUNT
// Live frames (BPF_PROG_TEST_RUN, BPF_F_TEST_XDP_LIVE_FRAMES) of bpf/testgen.o's syn_gen go out
// IFACE with random client addresses (10.200.0.0/16) and ports; gen_sink counts the director's
// XDP_TX answers coming back. Prints one JSON line.
import { BpfObject, BpfMap, TestRunFlag, attachXdp, ifIndex, testRun } from '../../src/native/index.js';
import { clientPacket, TCP } from './frames.js';
import { repoRoot } from './paths.js';

const [iface, dstMac, vip, countText] = process.argv.slice(2) as [string, string, string, string];
const count = Number(countText);
const obj = await BpfObject.open(`${repoRoot()}/bpf/testgen.o`);
const sink = attachXdp(obj.progFd('gen_sink'), iface, 'native');
try {
  const frame = Buffer.alloc(64);
  clientPacket('10.200.0.1', vip, { proto: 'tcp', sport: 1, dport: 80, flags: TCP.SYN }, { dst: dstMac }).copy(frame);
  const tpl = Buffer.alloc(72);
  frame.copy(tpl);
  Buffer.from([10, 200, 0, 0]).copy(tpl, 64);
  tpl.writeUInt32LE(0xffff, 68);
  const map: BpfMap = obj.map('gen_tpl');
  map.update(Buffer.alloc(4), tpl);
  const started = process.hrtime.bigint();
  let sent = 0;
  // Several calls, so the parent's checks interleave with the flood.
  const chunk = 250_000;
  while (sent < count) {
    const n = Math.min(chunk, count - sent);
    testRun(obj.progFd('syn_gen'), frame, { flags: TestRunFlag.XDP_LIVE_FRAMES, repeat: n, ingressIfindex: ifIndex(iface), batchSize: 64 });
    sent += n;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const sunk = (obj.map('gen_sunk').lookupPerCpu(Buffer.alloc(4)) ?? []).reduce((t, b) => t + b.readBigUInt64LE(0), 0n);
  console.log(JSON.stringify({ sent, seconds, sunk: Number(sunk) }));
} finally {
  sink.close();
  obj.close();
}
