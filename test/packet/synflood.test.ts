// A SYN flood with random client addresses, as live frames through a veth into lvs-xdp in native
// mode, while the packets of established flows keep being checked: every one must still reach
// its realserver. The connection table is small on purpose (4,096 entries for 1.5 M SYNs): the
// flood's SYN_RECV connections wait in lvs_synrecv (bpf/lvs_synrecv.h) and overwrite only each
// other there, so not one established entry is evicted from lvs_conns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { repoRoot } from '../lib/paths.js';
import { acceptTestRunFrames } from '../lib/accept.js';
import { CliNamespace } from '../lib/cli-ns.js';
import { openPinned, closeFd, testRun } from '../../src/native/index.js';

const ROOT = repoRoot();
const L = new CliNamespace('lvsy');
const { ns: NS, pin: PIN } = L;
const VIP = '10.81.0.100';
const FLOOD = Number(process.env.LVS_SYNFLOOD_FRAMES ?? 1_500_000);

const cli = (args: string[], input?: string): string => L.ok(args, { input });
const ip = (...args: string[]): string => L.ip(...args);

before(() => {
  L.create();
  ip('link', 'add', 'lvsy0', 'type', 'veth', 'peer', 'name', 'lvsy1');
  ip('link', 'set', 'lvsy0', 'up');
  ip('link', 'set', 'lvsy1', 'up');
  cli(['attach', 'lvsy0', '--mode', 'native', '--max-conns', '4096']);
  cli(['-R'], ['-A -t 10.81.0.100:80 -s mh', ...[11, 12, 13].map((x) => `-a -t ${VIP}:80 -r 10.81.0.${x} -g --mac 02:00:00:00:04:${x}`)].join('\n'));
});

after(() => L.cleanup());

test('SYN flood with random sources (live frames, native XDP): established flows keep their realservers', async (t) => {
  const prog = openPinned(`${PIN}/prog_lvs_director`);
  const send = (i: number, flags: number) => {
    acceptTestRunFrames(PIN);
    const r = testRun(prog, clientPacket(`198.51.100.${1 + (i % 250)}`, VIP, { proto: 'tcp', sport: 30000 + i, dport: 80, flags }), { dataSizeOut: 2048 });
    assert.equal(r.retval, XDP.TX);
    return r.data[5]!;
  };
  try {
    const established = Array.from({ length: 300 }, (_, i) => {
      const m = send(i, TCP.SYN);
      assert.equal(send(i, TCP.ACK), m);
      return m;
    });
    const before = JSON.parse(cli(['stats', '--json', '-i', '0'])) as { counters: Record<string, { value: number }> };
    const dirMac = (JSON.parse(ip('-j', 'link', 'show', 'lvsy0')) as { address: string }[])[0]!.address;
    const child = spawn('nsenter', [`--net=/run/netns/${NS}`, process.execPath, `${ROOT}/dist/test/lib/synflood-child.js`, 'lvsy1', dirMac, VIP, String(FLOOD)],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number>((res) => child.on('exit', (c) => res(c ?? -1)));
    let done = false;
    void exited.then(() => { done = true; });
    let checks = 0;
    let rounds = 0;
    // Check the established flows over and over while the flood runs.
    while (!done) {
      established.forEach((m, i) => {
        assert.equal(send(i, TCP.ACK | TCP.PSH), m, `established flow ${i} moved during the flood`);
        checks++;
      });
      rounds++;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(await exited, 0, err);
    const flood = JSON.parse(out) as { sent: number; seconds: number; sunk: number };
    established.forEach((m, i) => assert.equal(send(i, TCP.ACK), m, `established flow ${i} after the flood`));
    const after = JSON.parse(cli(['stats', '--json', '-i', '0'])) as { counters: Record<string, { value: number }>; connections: { entries: number; max: number; evicted: number } };
    const newFlows = after.counters.conn_new!.value - before.counters.conn_new!.value;
    // Nearly every flood frame reached the director (veth may drop a few under load).
    assert.ok(newFlows >= flood.sent * 0.9, `only ${newFlows} of ${flood.sent} SYNs were scheduled`);
    assert.equal(after.connections.evicted, 0, 'the flood evicted no entry from lvs_conns');
    assert.equal(after.connections.entries, 300, 'lvs_conns holds the established flows, nothing of the flood');
    const overwritten = after.counters.conn_synrecv_evicted!.value - before.counters.conn_synrecv_evicted!.value;
    assert.ok(overwritten > newFlows - 2 * 65536, `the flood overwrote its own SYN_RECV connections (${overwritten})`);
    assert.ok(flood.sunk >= newFlows * 0.9, `forwarded SYNs came back out of the director (${flood.sunk})`);
    assert.ok(rounds >= 2, 'checks ran during the flood');
    t.diagnostic(`SYN flood: ${flood.sent} frames in ${flood.seconds.toFixed(2)} s (${(flood.sent / flood.seconds / 1e6).toFixed(2)} Mpps offered), `
      + `${newFlows} new flows scheduled, ${flood.sunk} forwarded back, ${after.connections.evicted} evictions (table ${after.connections.max}), ${overwritten} SYN_RECV slots overwritten; `
      + `${checks} checks of 300 established flows in ${rounds} rounds during the flood: all on their realservers`);
  } finally {
    closeFd(prog);
  }
});
