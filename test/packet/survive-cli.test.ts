// Live connections through routine operations, through the public CLI as an operator runs them,
// each command a separate process on the pinned maps, with packets run through the attached
// program (BPF_PROG_TEST_RUN) between commands: `-S; -C; -R < saved`, `-D` + re-add and `-d` +
// re-add break no established connection (their packets are dropped meanwhile, never passed to
// the local stack nor rescheduled); settings.expire-nodest-conn ends them at once instead; lone
// ACKs raise InActConn, never ActiveConn.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { CliNamespace } from '../lib/cli-ns.js';
import { openPinned, closeFd, testRun } from '../../src/native/index.js';
import { acceptTestRunFrames } from '../lib/accept.js';

const L = new CliNamespace('lvsk');
const { state: STATE, pin: PIN } = L;
const VIP = '10.79.0.100';
const SVC = `${VIP}:80`;
const REALS = [11, 12, 13];
const macOf = (last: number) => `02:00:00:00:03:${String(last).padStart(2, '0')}`;
const ok = (args: string[], input?: string): string => L.ok(args, { input });
const rules = (reals = REALS) => [`-A -t ${SVC} -s mh`, ...reals.map((r) => `-a -t ${SVC} -r 10.79.0.${r} -g -w 1 --mac ${macOf(r)}`)].join('\n');

let prog = -1;
function send(client: string, sport: number, flags: number): string {
  // Test-run frames arrive on loopback: accepted again after every CLI command re-read the links.
  acceptTestRunFrames(PIN);
  const r = testRun(prog, clientPacket(client, VIP, { proto: 'tcp', sport, dport: 80, flags }), { dataSizeOut: 2048 });
  if (r.retval === XDP.TX) return String(parseInt(r.data.subarray(5, 6).toString('hex'), 10));
  return r.retval === XDP.DROP ? 'drop' : r.retval === XDP.PASS ? 'pass' : `action ${r.retval}`;
}

interface Flow { client: string; sport: number; rs: string }
let flows: Flow[] = [];

/** Each established flow's next packet: where it went, against where it was. */
function check(): { same: number; moved: Flow[]; dropped: number; passed: number } {
  const out = { same: 0, moved: [] as Flow[], dropped: 0, passed: 0 };
  for (const f of flows) {
    const got = send(f.client, f.sport, TCP.ACK | TCP.PSH);
    if (got === f.rs) out.same++;
    else if (got === 'drop') out.dropped++;
    else if (got === 'pass') out.passed++;
    else out.moved.push({ ...f, rs: got });
  }
  return out;
}

function counters(): Record<string, number> {
  const st = JSON.parse(ok(['stats', '--json', '-i', '0'])) as { counters: Record<string, { value: number }> };
  return Object.fromEntries(Object.entries(st.counters).map(([k, v]) => [k, v.value]));
}
function conns(): { active: number; inactive: number } {
  const st = JSON.parse(ok(['stats', '--json', '-i', '0'])) as { services: { id: string; realservers: { active: number; inactive: number }[] }[] };
  const s = st.services.find((x) => x.id === `tcp ${SVC}`);
  return { active: s?.realservers.reduce((n, r) => n + r.active, 0) ?? 0, inactive: s?.realservers.reduce((n, r) => n + r.inactive, 0) ?? 0 };
}

before(() => {
  L.create();
  L.veth('lvsk0', 'lvsk1');
  ok(['attach', 'lvsk0', '--preset', 'small']);
  prog = openPinned(`${L.pin}/prog_lvs_director`);
  L.onCleanup(() => closeFd(prog));
  ok(['-R'], rules());
  flows = Array.from({ length: 150 }, (_, i) => {
    const client = `198.51.100.${1 + (i % 200)}`;
    const sport = 30000 + i;
    const rs = send(client, sport, TCP.SYN);
    assert.equal(send(client, sport, TCP.ACK), rs);
    return { client, sport, rs };
  });
  assert.equal(new Set(flows.map((f) => f.rs)).size, 3, 'flows on every realserver');
});

after(() => L.cleanup());

test('-S; -C; -R < saved: established connections are held (dropped) while cleared and resume on their realservers', () => {
  const saved = ok(['-S', '-n']);
  const c0 = counters();
  ok(['-C']);
  const during = check();
  assert.deepEqual({ ...during, moved: during.moved.length }, { same: 0, moved: 0, dropped: 150, passed: 0 }, 'held, never to the local stack');
  assert.equal(send('198.51.100.250', 39000, TCP.SYN), 'pass', 'a new connection meets the kernel, as with no service');
  assert.equal(counters().drop_service_gone! - c0.drop_service_gone!, 150);
  ok(['-R'], saved);
  const r = check();
  assert.deepEqual({ ...r, moved: r.moved.length }, { same: 150, moved: 0, dropped: 0, passed: 0 }, `broken: ${JSON.stringify(r.moved.slice(0, 5))}`);
  assert.equal(conns().active, 150, 'ActiveConn counts them again');
});

test('-D then re-adding the service breaks no connection', () => {
  ok(['-D', '-t', SVC]);
  assert.equal(check().dropped, 150);
  ok(['-R'], rules());
  const r = check();
  assert.deepEqual({ ...r, moved: r.moved.length }, { same: 150, moved: 0, dropped: 0, passed: 0 });
});

test('-d then re-adding the realserver breaks no connection; the others never notice', () => {
  const c0 = counters();
  ok(['-d', '-t', SVC, '-r', '10.79.0.12']);
  const on12 = flows.filter((f) => f.rs === '12').length;
  const during = check();
  assert.deepEqual({ ...during, moved: during.moved.length }, { same: 150 - on12, moved: 0, dropped: on12, passed: 0 });
  assert.equal(counters().drop_real_gone! - c0.drop_real_gone!, on12);
  ok(['-a', '-t', SVC, '-r', '10.79.0.12', '-g', '-w', '1', '--mac', macOf(12)]);
  const r = check();
  assert.deepEqual({ ...r, moved: r.moved.length }, { same: 150, moved: 0, dropped: 0, passed: 0 });
  assert.equal(counters().conn_real_gone! - c0.conn_real_gone!, 0);
});

test('50 lone ACKs raise InActConn (strays), not ActiveConn', () => {
  const before = conns();
  for (let i = 0; i < 50; i++) assert.match(send(`203.0.113.${1 + i}`, 41000 + i, TCP.ACK), /^1[123]$/, 'still forwarded by the table');
  const now = conns();
  assert.equal(now.active, before.active);
  assert.equal(now.inactive, before.inactive + 50);
});

test('settings.expire-nodest-conn: a deleted realserver\'s connections end at once (rescheduled, conn_real_gone)', () => {
  const file = `${STATE}-nodest.yaml`;
  const yaml = ok(['config']);
  writeFileSync(file, yaml.startsWith('settings:') ? yaml.replace(/^settings:\n/, 'settings:\n  expire-nodest-conn: true\n') : `settings:\n  expire-nodest-conn: true\n${yaml}`);
  try {
    ok(['apply', '-f', file]);
  } finally {
    rmSync(file, { force: true });
  }
  assert.match(ok(['config']), /expire-nodest-conn: true/);
  const c0 = counters();
  ok(['-d', '-t', SVC, '-r', '10.79.0.13']);
  const on13 = flows.filter((f) => f.rs === '13').length;
  const r = check();
  assert.equal(r.moved.length, on13, 'rescheduled to another realserver (which resets them, as IPVS does)');
  assert.ok(r.moved.every((f) => f.rs !== '13'));
  assert.equal(counters().conn_real_gone! - c0.conn_real_gone!, on13);
});
