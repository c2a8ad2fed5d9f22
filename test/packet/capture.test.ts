// lvs-xdp capture at the hook (bpf/lvs_capture.h, src/capture/): frames through the real program
// with BPF_PROG_TEST_RUN and the capture switched on through the program's .bss, as the CLI does.
// Each record carries the frame as the director left it and its decision; the filters, the
// snap length and the rate limit work in the kernel; off, nothing is recorded; the pcapng file
// parses with tcpdump -r and carries the decision as the packet comment.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientPacket, TCP } from '../lib/frames.js';
import { DirectorHarness, XDP, TEST_IFINDEX } from '../lib/director.js';
import { onOneCpu } from '../lib/cpu.js';
import { Capture, outcomeIndexes, type CaptureRecord } from '../../src/capture/capture.js';
import { PcapngWriter, readPcapng } from '../../src/capture/pcapng.js';
import { describe as describeRecord } from '../../src/cli/capture.js';
import { ABI } from '../../src/abi/generated.js';

const VIP = '10.0.0.1';
const CLIENT = '198.51.100.7';
const RS = [
  { addr: '192.168.1.10', mac: '02:00:00:00:01:0a' },
  { addr: '192.168.1.11', mac: '02:00:00:00:01:0b' },
  { addr: '192.168.1.12', mac: '02:00:00:00:01:0c' },
];

let h: DirectorHarness;
let cap: Capture;

before(async () => {
  h = await DirectorHarness.load();
  cap = Capture.open(h.progFd);
});
after(() => {
  cap?.stop();
  cap?.close();
  h?.close();
});
beforeEach(() => {
  cap.stop();
  h.reset();
  h.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 0x5eed, tunMtu: 1500, ttl: 64 });
  h.setReal(0, { ...RS[0]!, method: 'dr' }, 1, 0);
  h.setService({ proto: 'tcp', vip: VIP, port: 80 }, 0, [0]);
  h.setReal(1, { ...RS[1]!, method: 'dr' }, 1, 1);
  h.setService({ proto: 'tcp', vip: VIP, port: 443 }, 1, [1]);
  // Service 2 has no realserver: its SYNs are dropped (drop_no_real).
  h.setService({ proto: 'tcp', vip: VIP, port: 8080 }, 2, [ABI.LVS_REAL_NONE]);
});

const syn = (dport: number, sport = 40000) => clientPacket(CLIENT, VIP, { proto: 'tcp', sport, dport, flags: TCP.SYN });
const other = () => clientPacket(CLIENT, '10.0.0.99', { proto: 'tcp', sport: 40000, dport: 80, flags: TCP.SYN });
const names = (r: CaptureRecord) => r.counters.map((c) => c.name).sort();
const drain = () => cap.poll(50, 1000);

test('off: frames are handled and counted as always, and nothing is recorded', () => {
  const r = h.run(syn(80));
  assert.equal(r.action, XDP.TX);
  assert.equal(h.counters().FWD_DR, 1n);
  assert.deepEqual(drain(), []);
});

test('on: each frame\'s record has the frame as the director left it and its decision', () => {
  cap.start({}, 256, 1000);
  const fwd = h.run(syn(80));
  const pass = h.run(other());
  const drop = h.run(syn(8080));
  assert.deepEqual([fwd.action, pass.action, drop.action], [XDP.TX, XDP.PASS, XDP.DROP]);
  const recs = drain();
  assert.equal(recs.length, 3);
  const [f, p, d] = recs as [CaptureRecord, CaptureRecord, CaptureRecord];
  assert.deepEqual({ svc: f.svcId, real: f.realIdx, action: f.action, counters: names(f) }, { svc: 0, real: 0, action: XDP.TX, counters: ['CONN_NEW', 'CONN_SYNRECV_NEW', 'FWD_DR'] });
  assert.deepEqual(f.data, fwd.out.subarray(0, f.data.length), 'the forwarded frame, new MACs included');
  assert.equal(f.len, fwd.out.length);
  assert.equal(f.ifindex, TEST_IFINDEX);
  assert.deepEqual({ svc: p.svcId, real: p.realIdx, action: p.action, counters: names(p) }, { svc: undefined, real: undefined, action: XDP.PASS, counters: ['PASS_NOT_VIP'] });
  assert.deepEqual({ svc: d.svcId, real: d.realIdx, action: d.action, counters: names(d) }, { svc: 2, real: undefined, action: XDP.DROP, counters: ['DROP_NO_REAL'] });
  assert.ok(f.tsNs > 0n && d.tsNs >= f.tsNs);
  cap.stop();
  h.run(syn(80, 40001));
  assert.deepEqual(drain(), [], 'stopped: nothing more');
});

test('filters in the kernel: by service, by realserver, by outcome', () => {
  const frames = () => [syn(80), syn(443), other(), syn(8080), syn(443, 40002)].map((f) => h.run(f));
  cap.start({ svcId: 1 }, 256, 1000);
  frames();
  assert.deepEqual(drain().map((r) => [r.svcId, r.realIdx]), [[1, 1], [1, 1]]);
  cap.start({ realIdx: 0 }, 256, 1000);
  frames();
  assert.deepEqual(drain().map((r) => [r.svcId, r.realIdx, names(r).join()]), [[0, 0, 'CONN_HIT,FWD_DR']]);
  cap.start({ outcomes: outcomeIndexes(['pass_not_vip', 'drop_no_real']) }, 256, 1000);
  frames();
  assert.deepEqual(drain().map((r) => names(r).join()), ['PASS_NOT_VIP', 'DROP_NO_REAL']);
  cap.start({ svcId: 0, outcomes: outcomeIndexes(['drop_no_real']) }, 256, 1000);
  frames();
  assert.deepEqual(drain(), [], 'both must match');
});

test('bounded: the snap length cuts each frame; past the rate frames are counted, not recorded', () => {
  cap.start({}, 20, 1000);
  const r = h.run(syn(80));
  const [rec] = drain();
  assert.equal(rec!.data.length, 20);
  assert.equal(rec!.len, r.out.length);
  assert.deepEqual(rec!.data, r.out.subarray(0, 20));
  onOneCpu(() => {
    cap.start({}, 256, 2);
    for (let i = 0; i < 5; i++) h.run(syn(80, 41000 + i));
    assert.equal(drain().length, 2);
    assert.equal(cap.missed().limited, 3n);
  });
});

test('pcapng: tcpdump -r reads every frame; each carries the decision as its comment', () => {
  cap.start({}, 256, 1000);
  h.run(syn(80));
  h.run(syn(443));
  h.run(other());
  const recs = drain();
  assert.equal(recs.length, 3);
  const dir = mkdtempSync(join(tmpdir(), 'lvs-capture-'));
  try {
    const file = join(dir, 'c.pcapng');
    const parts: Buffer[] = [];
    const w = new PcapngWriter((b) => parts.push(b), 256, () => 'lo');
    const svcNames = { services: new Map([[0, 'tcp 10.0.0.1:80'], [1, 'tcp 10.0.0.1:443']]), reals: new Map([[0, RS[0]!.addr], [1, RS[1]!.addr]]) };
    for (const r of recs) w.packet(r.ifindex, 1_700_000_000_000_000_000n + r.tsNs % 1_000_000_000n, r.data, r.len, describeRecord(r, svcNames));
    writeFileSync(file, Buffer.concat(parts));
    const out = execFileSync('tcpdump', ['-r', file, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n');
    assert.equal(out.length, 3, out.join('\n'));
    assert.match(out[0]!, /198\.51\.100\.7\.40000 > 10\.0\.0\.1\.80: Flags \[S\]/);
    assert.match(out[2]!, /> 10\.0\.0\.99\.80:/);
    const back = readPcapng(readFileSync(file));
    assert.deepEqual(back.packets.map((p) => p.comment), [
      'lvs-xdp: service tcp 10.0.0.1:80 realserver 192.168.1.10 outcome fwd_dr events conn_new,conn_synrecv_new action XDP_TX',
      'lvs-xdp: service tcp 10.0.0.1:443 realserver 192.168.1.11 outcome fwd_dr events conn_new,conn_synrecv_new action XDP_TX',
      'lvs-xdp: service - realserver - outcome pass_not_vip action XDP_PASS',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
