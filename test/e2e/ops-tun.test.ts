// `lvs-xdp run` with forwarding-path checks on LVS-Tun realservers, in a namespace lab: two
// realservers on the director's LAN and one behind a router, each decapsulating with the XDP
// program (`realserver setup --mode tun`; there is no ipip module here, on either side). The
// probe (src/ops/path-probe.py, mode tun) sends the IP-in-IP packet itself and reads the
// realserver's direct answer from the VIP off the interface. VIPs routed to the director (one
// step also makes T4 local on it):
//   T4 198.51.100.212:80 tcp, T6 [2001:db8:100::212]:80 tcp, U4 198.51.100.212:9000 udp
// Steps: all up; rs2's decapsulation detached -> down in every service although its own address
// answers; T4 removed from rs3's lo -> rs3 down in T4 and U4 only; rs1 up throughout; both
// repaired -> up again; SIGTERM leaves no rule behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, installCleanupHandlers, testPrefix, checkIn, runIn, waitFor } from '../../src/lab/index.js';
import { startRunListening, NEEDS_ROOT } from './helpers.js';
import { Director } from '../../src/director/director.js';

const T4 = '198.51.100.212';
const T6 = '2001:db8:100::212';
const ST4 = `tcp ${T4}:80`;
const ST6 = `tcp [${T6}]:80`;
const SU4 = `udp ${T4}:9000`;
const BOUND_MS = 30_000;

let lab: Lab;
let run: ChildProcess | undefined;
const logs: Record<string, unknown>[] = [];

function config(): string {
  const rs = lab.realservers;
  const check = (type: string) => `{ type: ${type}, interval: 1, timeout: 0.9, rise: 2, fall: 2, via: forwarding }`;
  return `# written by test/e2e/ops-tun.test.ts
services:
  - vip: ${T4}
    port: 80
    scheduler: mh
    table-size: 251
    health-check: ${check('tcp')}
    realservers:
${rs.map((r) => `      - { address: ${r.v4}, method: tun }`).join('\n')}
  - vip: "${T6}"
    port: 80
    scheduler: mh
    table-size: 251
    health-check: ${check('tcp')}
    realservers:
${rs.map((r) => `      - { address: "${r.v6}", method: tun }`).join('\n')}
  - vip: ${T4}
    port: 9000
    protocol: udp
    scheduler: mh
    table-size: 251
    health-check: ${check('udp')}
    realservers:
${rs.map((r) => `      - { address: ${r.v4}, method: tun }`).join('\n')}
`;
}

const paths = () => ({ pinDir: `/sys/fs/bpf/lvs-xdp@${lab.director.ns}`, stateDir: `/run/lvs-xdp/lvs-xdp@${lab.director.ns}` });

function owners(service: string): Set<string> {
  const d = Director.open(paths());
  try {
    return new Set((d.readTables().get(service) ?? []).filter((x): x is string => x !== null));
  } finally {
    d.close();
  }
}

function findLog(pred: (l: Record<string, unknown>) => boolean, from = 0): Record<string, unknown> | undefined {
  return logs.slice(from).find(pred);
}

const waitLog = (what: string, pred: (l: Record<string, unknown>) => boolean, from = 0) => waitFor(what, () => findLog(pred, from), BOUND_MS, 50);

async function health(): Promise<Record<string, Record<string, string>>> {
  const r = await runIn(lab.director.ns, 'curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:9470/api/status']);
  const doc = JSON.parse(r.stdout) as { services: { id: string; realservers: { address: string; health: string }[] }[] };
  return Object.fromEntries(doc.services.map((s) => [s.id, Object.fromEntries(s.realservers.map((x) => [x.address, x.health]))]));
}

const healthLog = (service: string, rs: string, to: string) => (l: Record<string, unknown>) => l.event === 'health' && l.service === service && l.realserver === rs && l.to === to;

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await Lab.create({ prefix: testPrefix('opstun'), clients: 1, clientAddresses: 2, realservers: 2, remoteRealservers: 1 });
  try {
    const c = lab.clients[0]!;
    await checkIn(c.ns, 'ip', ['route', 'add', `${T4}/32`, 'via', lab.director.v4]);
    await checkIn(c.ns, 'ip', ['-6', 'route', 'add', `${T6}/128`, 'via', lab.director.v6]);
    await Promise.all(lab.realservers.map((r) => lab.setupRealserver(r, 'tun', [T4, T6])));
    await lab.startServers({ httpPort: 80, udpVips: [T4] });
    const file = join(lab.dir, 'ops-tun.yaml');
    writeFileSync(file, config());
    run = await startRunListening(lab, ['-f', file, '-i', 'eth0', '--mode', 'native', '--log-format', 'json', '--log-level', 'debug'], { LVS_XDP_LISTEN: '127.0.0.1:9470' }, logs, BOUND_MS);
  } catch (e) {
    lab.destroy();
    throw e;
  }
}, { timeout: 180_000 });

after(() => {
  if (process.env.LVS_OPS_TUN_LOG) writeFileSync(process.env.LVS_OPS_TUN_LOG, logs.map((l) => JSON.stringify(l)).join('\n'));
  run?.kill('SIGKILL');
  lab?.destroy();
});

test('ops Tun: every forwarding-path check through the tunnel passes (LAN and routed realservers, IPv4 in IPv4, IPv6 in IPv6, UDP)', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const rs = lab.realservers;
  // Each realserver is reported up by checks that passed (debug logs), in every service.
  for (const [svc, six] of [[ST4, false], [ST6, true], [SU4, false]] as const) {
    for (const r of rs) {
      const addr = six ? r.v6 : r.v4;
      const ok = await waitLog(`a passing check of ${r.role} in ${svc}`, (l) => l.event === 'check' && l.service === svc && l.realserver === addr && l.ok === true);
      assert.match(String(ok.detail), /via the tunnel/);
    }
  }
  assert.equal(findLog((l) => l.event === 'health' && l.to === 'down'), undefined, JSON.stringify(findLog((l) => l.event === 'health')));
  const h = await health();
  for (const s of [ST4, ST6, SU4]) assert.ok(Object.values(h[s]!).every((x) => x === 'up'), JSON.stringify(h));
  const b = await lab.burst({ url: `http://${T4}/`, sources: lab.clients[0]!.v4s, count: 12, concurrency: 4, timeoutMs: 5000 });
  assert.equal(b.failed, 0, b.errors.join('; '));
  assert.deepEqual(Object.keys(b.counts).sort(), ['rs1', 'rs2', 'rs3']);
});

test('ops Tun: with the VIP local on the director the checks still pass (the answer, a martian here, is read off the interface)', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  await checkIn(lab.director.ns, 'ip', ['addr', 'add', `${T4}/32`, 'dev', 'eth0']);
  try {
    const mark = logs.length;
    for (const r of lab.realservers) {
      for (const svc of [ST4, SU4]) {
        await waitLog(`a passing check of ${r.role} in ${svc} with ${T4} local`, (l) => l.event === 'check' && l.service === svc && l.realserver === r.v4 && l.ok === true, mark);
      }
    }
    assert.equal(findLog((l) => l.event === 'health' && l.to === 'down', mark), undefined, JSON.stringify(findLog((l) => l.event === 'health', mark)));
  } finally {
    await runIn(lab.director.ns, 'ip', ['addr', 'del', `${T4}/32`, 'dev', 'eth0']);
  }
});

test('ops Tun: a realserver whose decapsulation is detached goes down in every service although its own address answers', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const rs2 = lab.realservers[1]!;
  const mark = logs.length;
  // Unpinning the decap program's bpf_link (nothing else holds it) detaches it.
  const link = `/sys/fs/bpf/lvs-xdp-realserver@${rs2.ns}/link`;
  assert.ok(existsSync(link), link);
  rmSync(link);
  await waitLog('rs2 down in T4', healthLog(ST4, rs2.v4, 'down'), mark);
  await waitLog('rs2 down in T6', healthLog(ST6, rs2.v6, 'down'), mark);
  await waitLog('rs2 down in U4', healthLog(SU4, rs2.v4, 'down'), mark);
  await waitFor('rs2 out of the T4 and T6 tables', () => !owners(ST4).has(rs2.v4) && !owners(ST6).has(rs2.v6), BOUND_MS);
  const direct = await runIn(lab.director.ns, 'curl', ['-sS', '--max-time', '5', `http://${rs2.v4}/`]);
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(direct.stdout.trim(), 'rs2', 'its own address answers: a direct check would have kept it');
  const b = await lab.burst({ url: `http://${T4}/`, sources: lab.clients[0]!.v4s, count: 10, concurrency: 4, timeoutMs: 5000 });
  assert.equal(b.failed, 0, b.errors.join('; '));
  assert.equal(b.counts.rs2, undefined);
  const h = await health();
  assert.equal(h[ST4]![lab.realservers[0]!.v4], 'up');
  assert.equal(h[ST4]![lab.realservers[2]!.v4], 'up');
});

test('ops Tun: a realserver (behind the router) whose VIP is missing from lo goes down in that VIP\'s services only', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const [rs1, , rs3] = lab.realservers;
  const mark = logs.length;
  await checkIn(rs3!.ns, 'ip', ['addr', 'del', `${T4}/32`, 'dev', 'lo']);
  await waitLog('rs3 down in T4', healthLog(ST4, rs3!.v4, 'down'), mark);
  await waitLog('rs3 down in U4', healthLog(SU4, rs3!.v4, 'down'), mark);
  await waitFor('rs3 out of the T4 table', () => !owners(ST4).has(rs3!.v4), BOUND_MS);
  const direct = await runIn(lab.director.ns, 'curl', ['-sS', '--max-time', '5', `http://${rs3!.v4}/`]);
  assert.equal(direct.stdout.trim(), 'rs3');
  const h = await health();
  assert.equal(h[ST6]![rs3!.v6], 'up', 'T6 is still on its lo');
  assert.equal(h[ST4]![rs1!.v4], 'up');
  assert.equal(findLog(healthLog(ST4, rs1!.v4, 'down')), undefined, 'the healthy realserver never went down');
  const b = await lab.burst({ url: `http://${T4}/`, sources: lab.clients[0]!.v4s, count: 10, concurrency: 4, timeoutMs: 5000 });
  assert.equal(b.failed, 0, b.errors.join('; '));
  assert.deepEqual(Object.keys(b.counts), ['rs1']);
});

test('ops Tun: repaired realservers come back; SIGTERM stops run and leaves no forwarding-path rule', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const [, rs2, rs3] = lab.realservers;
  const mark = logs.length;
  await lab.setupRealserver(rs2!, 'tun', [T4, T6]);
  await checkIn(rs3!.ns, 'ip', ['addr', 'add', `${T4}/32`, 'dev', 'lo']);
  await waitLog('rs2 up in T4', healthLog(ST4, rs2!.v4, 'up'), mark);
  await waitLog('rs2 up in T6', healthLog(ST6, rs2!.v6, 'up'), mark);
  await waitLog('rs3 up in T4', healthLog(ST4, rs3!.v4, 'up'), mark);
  await waitFor('all three in T4', () => owners(ST4).size === 3, BOUND_MS);
  const m2 = logs.length;
  run!.kill('SIGTERM');
  await waitLog('stopped', (l) => l.event === 'stopped', m2);
  await waitFor('run exited', () => run!.exitCode !== null, 20_000);
  assert.equal(run!.exitCode, 0);
  const rules = await checkIn(lab.director.ns, 'ip', ['rule', 'show']);
  assert.doesNotMatch(rules, /sport 61/);
});
