// Connection sync events through the library, as `lvs-xdp run` will use them: a director attached
// by the CLI, `d.setSyncEvents` writes one plan (lvs_cfg only) and records the setting, a new
// process (a restarted `run`) finds it, a later change keeps it, and `SyncEventReader` reads the
// pinned ring: a flow's ACK (run through the pinned program, as received on the attached
// interface) comes back as IPVS's sync entry; switched off, nothing more.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { repoRoot } from '../lib/paths.js';
import { CliNamespace } from '../lib/cli-ns.js';

const L = new CliNamespace('lvsy');
const ROOT = repoRoot();
const VIP = '10.79.0.100';
const RS = '10.79.0.10';
const RS_MAC = '02:00:00:00:03:0a';
const OWN_MAC = '02:00:00:00:03:01';

function node(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('nsenter', L.argv([process.execPath, '--input-type=module', '-e', script]), { cwd: ROOT, env: L.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

before(() => {
  L.create();
  L.veth('lvsy0', 'lvsy1', { mac: OWN_MAC, addr: '10.79.0.1/24' });
  L.ok(['attach', 'lvsy0', '--mode', 'generic', '--preset', 'small']);
  L.ok(['-A', '-t', `${VIP}:80`, '-s', 'rr']);
  L.ok(['-a', '-t', `${VIP}:80`, '-r', RS, '-g', '--mac', RS_MAC]);
});
after(() => L.cleanup());

/** A script's prelude: the library, the reader, and one client packet through the pinned program
 *  as received on lvsy0 (its MAC as destination: the director's own frames only). */
const PRELUDE = `
  import { Director } from 'lvs-xdp';
  import { SyncEventReader } from './dist/src/sync/events.js';
  import { testRun, openPinned, closeFd, ifIndex } from './dist/src/native/index.js';
  import { clientPacket, mac } from './dist/test/lib/frames.js';
  const d = Director.open();
  const own = '${OWN_MAC}';
  const send = (sport, flags) => {
    const fd = openPinned(d.paths.pinDir + '/prog_lvs_director');
    try {
      const frame = clientPacket('198.51.100.9', '${VIP}', { proto: 'tcp', sport, dport: 80, flags }, { dst: own });
      return testRun(fd, frame, { dataSizeOut: frame.length + 256, ingressIfindex: ifIndex('lvsy0') }).retval;
    } finally { closeFd(fd); }
  };
`;
const script = (body: string) => PRELUDE + body;

test('setSyncEvents: one settings step, recorded; a new process finds it; the reader returns the flow as IPVS\'s entry', { timeout: 60_000 }, async () => {
  const on = await node(script(`
    console.log(JSON.stringify(d.syncEvents()));
    const steps = await d.setSyncEvents({ on: true, refreshS: 30 });
    console.log(JSON.stringify(steps.map((s) => s.op)));
    console.log(JSON.stringify((await d.setSyncEvents({ on: true, refreshS: 30 })).length));
    d.close();
  `));
  assert.equal(on.code, 0, on.stderr);
  assert.deepEqual(on.stdout.trim().split('\n'), ['{"on":false,"refreshS":0}', '["settings"]', '0']);

  // A later change through the CLI keeps it (a plan writes lvs_cfg only when it changes, and then
  // with the recorded setting).
  L.ok(['-a', '-t', `${VIP}:80`, '-r', '10.79.0.11', '-g', '--mac', '02:00:00:00:03:0b', '-w', '0']);

  const read = await node(script(`
    console.log(JSON.stringify(d.syncEvents()));
    const r = SyncEventReader.open(d);
    const actions = [send(40000, 0x02), send(40000, 0x10)];
    console.log(JSON.stringify(actions));
    console.log(JSON.stringify(r.read()));
    await d.setSyncEvents({ on: false });
    send(40001, 0x02); send(40001, 0x10);
    console.log(JSON.stringify(r.read()));
    r.close();
    d.close();
  `));
  assert.equal(read.code, 0, read.stderr);
  const [setting, actions, first, after] = read.stdout.trim().split('\n');
  assert.equal(setting, '{"on":true,"refreshS":30}', 'a new process (a restarted run) finds the setting');
  assert.equal(actions, '[3,3]', 'SYN and ACK forwarded (XDP_TX)');
  assert.deepEqual(JSON.parse(first!), [{
    family: 4, protocol: 6, flags: 3, state: 1, cport: 40000, vport: 80, dport: 80, fwmark: 0, timeout: 900,
    caddr: '198.51.100.9', vaddr: VIP, daddr: RS,
  }]);
  assert.equal(after, '[]', 'switched off: nothing');
});
