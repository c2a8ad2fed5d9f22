/** VIP announcement (src/ops/announce.ts): decisions per VIP, the routes the announcer keeps, the guard, the BIRD config. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBirdProtocols } from '../../src/ops/bird.js';
import { spawn } from 'node:child_process';
import {
  decideAnnouncements, routeArgs, listArgs, guardScript, Announcer, birdConfig, type AnnounceInput, type IpRunner,
} from '../../src/ops/announce.js';
import type { HealthRow } from '../../src/ops/metrics.js';
import { birdConfigFromOptions } from '../../src/cli/announce.js';
import { parseConfigText } from '../../src/config/parse.js';
import { formatConfigYaml } from '../../src/config/format.js';
import { createLogger } from '../../src/ops/log.js';
import { ConfigError } from '../../src/errors.js';

const S1 = 'tcp 10.0.0.1:80';
const S2 = 'tcp 10.0.0.1:443';
const S6 = 'tcp [2001:db8::1]:80';
function row(service: string, address: string, o: Partial<HealthRow> = {}): HealthRow {
  return { service, address, configuredWeight: 1, effectiveWeight: 1, checks: 3, failures: 0, up: 1, ...o };
}
function input(rows: HealthRow[], o: Partial<AnnounceInput> = {}): AnnounceInput {
  return {
    attached: true, rows,
    services: [{ id: S1, vip: '10.0.0.1', sorryActive: false }, { id: S2, vip: '10.0.0.1', sorryActive: false }, { id: S6, vip: '2001:db8::1', sorryActive: false }],
    ...o,
  };
}
const byVip = (i: AnnounceInput) => Object.fromEntries(decideAnnouncements(i).map((d) => [d.vip, `${d.announce ? '+' : '-'}${d.reason}`]));

test('a VIP is announced while one realserver of one of its services takes new flows', () => {
  assert.deepEqual(byVip(input([row(S1, 'a', { up: 0 }), row(S2, 'b'), row(S6, 'c')])), { '10.0.0.1': '+serving', '2001:db8::1': '+serving' });
  // Unchecked (up undefined) takes flows; down, weight 0, removed (on-down: cut) and unresolved do not.
  assert.deepEqual(byVip(input([row(S1, 'a', { up: undefined }), row(S6, 'c', { up: 0, effectiveWeight: 0 })])), { '10.0.0.1': '+serving', '2001:db8::1': '-no-healthy-realserver' });
  for (const o of [{ up: 0 }, { effectiveWeight: 0 }, { effectiveWeight: undefined }, { unresolved: true }] as Partial<HealthRow>[]) {
    assert.equal(byVip(input([row(S1, 'a', o), row(S2, 'b', o)]))['10.0.0.1'], '-no-healthy-realserver', JSON.stringify(o));
  }
});

test('withdrawn and why: drained, detached; the sorry server keeps the VIP announced', () => {
  const drained = [row(S1, 'a', { drained: true, effectiveWeight: 0 }), row(S2, 'b', { up: 0 })];
  assert.equal(byVip(input(drained))['10.0.0.1'], '-drained');
  // A drained realserver that is down too: the VIP is withdrawn because nothing is healthy.
  assert.equal(byVip(input([row(S1, 'a', { drained: true, up: 0, effectiveWeight: 0 })]))['10.0.0.1'], '-no-healthy-realserver');
  assert.deepEqual(byVip(input([row(S1, 'a')], { attached: false })), { '10.0.0.1': '-detached', '2001:db8::1': '-detached' });
  const sorry = input([row(S1, 'a', { up: 0 })]);
  sorry.services[0]!.sorryActive = true;
  assert.equal(byVip(sorry)['10.0.0.1'], '+sorry-server');
});

test('ip arguments: host routes via lo in the table, with the protocol number', () => {
  const s = { table: 201, protocol: 201 };
  assert.deepEqual(routeArgs(s, 'replace', '10.0.0.1'), ['-4', 'route', 'replace', '10.0.0.1/32', 'dev', 'lo', 'table', '201', 'proto', '201']);
  assert.deepEqual(routeArgs({ table: 7, protocol: 99 }, 'del', '2001:db8::1'), ['-6', 'route', 'del', '2001:db8::1/128', 'table', '7', 'proto', '99']);
  assert.deepEqual(listArgs(s, 6), ['-j', '-6', 'route', 'show', 'table', '201', 'proto', '201']);
});

/** A fake kernel table behind the `ip` runner. */
function fakeIp(fail = new Set<string>()): { ip: IpRunner; table: Set<string>; calls: string[] } {
  const table = new Set<string>();
  const calls: string[] = [];
  const ip: IpRunner = async (args) => {
    calls.push(args.join(' '));
    await new Promise((r) => setTimeout(r, 1));
    const [fam, , op, pfx] = args;
    if (args[0] === '-j') {
      const f = args[1] === '-6' ? ':' : '.';
      return { code: 0, stdout: JSON.stringify([...table].filter((v) => v.includes(f)).map((dst) => ({ dst }))), stderr: '' };
    }
    const vip = pfx!.split('/')[0]!;
    if (fail.has(vip)) return { code: 2, stdout: '', stderr: 'RTNETLINK answers: Operation not permitted' };
    if (op === 'replace') table.add(vip);
    else if (!table.delete(vip)) return { code: 2, stdout: '', stderr: 'RTNETLINK answers: No such process' };
    void fam;
    return { code: 0, stdout: '', stderr: '' };
  };
  return { ip, table, calls };
}

const quiet = createLogger('json', { level: 'silent' });

test('the announcer keeps the table equal to the decisions; stop withdraws all and closes the guard', async () => {
  const f = fakeIp();
  f.table.add('10.9.9.9'); // a stray of an earlier run: not configured any more
  let closed = 0;
  const a = new Announcer({ table: 201, protocol: 201 }, { log: quiet, ip: f.ip, guard: () => ({ close: () => { closed++; }, handover() {} }) });
  await a.start();
  await a.update(input([row(S1, 'a'), row(S6, 'c')]));
  assert.deepEqual([...f.table].sort(), ['10.0.0.1', '2001:db8::1']);
  assert.deepEqual(a.state().map((x) => [x.vip, x.announced, x.reason]), [['10.0.0.1', true, 'serving'], ['2001:db8::1', true, 'serving']]);
  // Several updates in a row: the latest wanted state wins, nothing is done twice.
  const n = f.calls.length;
  void a.update(input([row(S1, 'a', { up: 0 }), row(S6, 'c')]));
  void a.update(input([row(S1, 'a', { up: 0 }), row(S6, 'c', { up: 0 })]));
  await a.update(input([row(S1, 'a', { up: 0 }), row(S6, 'c')]));
  assert.deepEqual([...f.table], ['2001:db8::1']);
  assert.ok(f.calls.length - n <= 2, f.calls.slice(n).join('; '));
  assert.deepEqual(a.state().map((x) => [x.vip, x.announced, x.reason]), [['10.0.0.1', false, 'no-healthy-realserver'], ['2001:db8::1', true, 'serving']]);
  await a.stop();
  assert.deepEqual([...f.table], []);
  assert.equal(closed, 1);
  assert.deepEqual(a.state().map((x) => [x.vip, x.announced, x.reason]), [['10.0.0.1', false, 'stopped'], ['2001:db8::1', false, 'stopped']]);
});

test('a route that cannot be installed: withdrawn with the error, tried again at the next update', async () => {
  const fail = new Set(['10.0.0.1']);
  const f = fakeIp(fail);
  const a = new Announcer({ table: 201, protocol: 201 }, { log: quiet, ip: f.ip, guard: () => ({ close() {}, handover() {} }) });
  await a.start();
  await a.update(input([row(S1, 'a')]));
  const [r] = a.state();
  assert.equal(r!.announced, false);
  assert.match(r!.error!, /ip route replace: RTNETLINK answers: Operation not permitted/);
  fail.clear();
  await a.update(input([row(S1, 'a')]));
  assert.deepEqual(a.state()[0], { vip: '10.0.0.1', announced: true, reason: 'serving', since: a.state()[0]!.since });
});

test('the guard flushes the table once its stdin closes (run gone), not before', async () => {
  // The script with `ip` replaced by a shell function that records its arguments.
  const script = `ip() { echo "ip $*"; }; ${guardScript({ table: 201, protocol: 77 })}`;
  const p = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(out, '', 'nothing flushed while run lives');
  p.stdin.end();
  await new Promise((r) => p.on('close', r));
  assert.equal(out, 'ip -4 route flush table 201 proto 77\nip -6 route flush table 201 proto 77\n');
});

test('a handed-over guard keeps the routes for its grace time, then flushes (unless a new run ends it)', async () => {
  const script = `ip() { echo "ip $*"; }; ${guardScript({ table: 201, protocol: 77 }, 1)}`;
  const p = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  p.stdin.end('handover\n');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(out, '', 'kept during the grace time');
  await new Promise((r) => p.on('close', r));
  assert.equal(out, 'ip -4 route flush table 201 proto 77\nip -6 route flush table 201 proto 77\n');
});

test('a director drain withdraws every VIP (director-drained) while attached; detached wins', () => {
  const i = { ...input([row(S1, 'a'), row(S6, 'c')]), directorDrained: true };
  assert.deepEqual(decideAnnouncements(i).map((d) => [d.vip, d.announce, d.reason]), [['10.0.0.1', false, 'director-drained'], ['2001:db8::1', false, 'director-drained']]);
  assert.deepEqual(decideAnnouncements({ ...i, attached: false }).map((d) => d.reason), ['detached', 'detached']);
});

test('BIRD\'s show protocols: BGP rows with state, since and info', () => {
  const text = [
    'BIRD 2.0.12 ready.',
    'Name       Proto      Table      State  Since         Info',
    'device1    Device     ---        up     00:58:38.346  ',
    'lvs_xdp4   Kernel     master4    up     00:58:38.346  ',
    'upstream1  BGP        ---        up     00:58:38.346  Established   ',
    'upstream2  BGP        ---        start  00:58:42.230  Idle          Error: Link down',
    'upstream3  BGP        ---        start  2026-12-05 00:58:42  Active        Socket: Connection refused',
  ].join('\n');
  assert.deepEqual(parseBirdProtocols(text), [
    { name: 'upstream1', state: 'up', since: '00:58:38.346', bgp: 'Established', info: '', established: true },
    { name: 'upstream2', state: 'start', since: '00:58:42.230', bgp: 'Idle', info: 'Error: Link down', established: false },
    { name: 'upstream3', state: 'start', since: '2026-12-05 00:58:42', bgp: 'Active', info: 'Socket: Connection refused', established: false },
  ]);
});

test('settings.announce: parsed, checked, written back', () => {
  const text = 'settings:\n  announce: { table: 201 }\nservices: []\n';
  const cfg = parseConfigText(text, 'x.yaml');
  assert.deepEqual(cfg.settings?.announce, { table: 201 });
  assert.match(formatConfigYaml({ ...cfg, settings: { announce: { table: 9, protocol: 99 } } }), /announce:\s*\n?\s*table: 9\s*\n\s*protocol: 99|announce: \{ table: 9, protocol: 99 \}/);
  assert.throws(() => parseConfigText('settings:\n  announce: { table: 254 }\nservices: []\n', 'x.yaml'), /tables 253-255/);
  assert.throws(() => parseConfigText('settings:\n  announce: { table: 1, protocol: 2 }\nservices: []\n', 'x.yaml'), ConfigError);
  const withSock = parseConfigText('settings:\n  announce: { table: 201, bird-socket: /run/bird/bird.ctl }\nservices: []\n', 'x.yaml');
  assert.deepEqual(withSock.settings?.announce, { table: 201, birdSocket: '/run/bird/bird.ctl' });
  assert.match(formatConfigYaml(withSock), /bird-socket: \/run\/bird\/bird.ctl/);
  assert.throws(() => parseConfigText('settings:\n  announce: { table: 201, bird-socket: bird.ctl }\nservices: []\n', 'x.yaml'), /absolute path/);
});

test('bird-config: the kernel protocol learns the table, BGP exports only those routes, GR off', () => {
  const t = birdConfig({ routerId: '10.99.0.2', asn: 65001, neighbors: [{ address: '10.99.0.1', asn: 65000 }, { address: 'fd00::1', asn: 65000 }], table: 7, protocol: 99, holdTime: 3, keepaliveTime: 1 });
  assert.match(t, /protocol kernel lvs_xdp4 \{\n  kernel table 7;\n  learn;.*\n.*\n  ipv4 \{ import where krt_source = 99; export none; \};/);
  assert.match(t, /neighbor 10\.99\.0\.1 as 65000;\n  hold time 3; keepalive time 1;.*\n  graceful restart off;.*\n  ipv4 \{ import none; export where proto = "lvs_xdp4"; next hop self; \};/);
  assert.match(t, /neighbor fd00::1 as 65000;[^}]*ipv6 \{ import none; export where proto = "lvs_xdp6"/);
  const o = { routerId: '10.99.0.2', asn: '65001', neighbor: ['10.99.0.1'], neighborAs: '65000', table: '201', protocol: '201', holdTime: '3', keepaliveTime: '1' };
  assert.match(birdConfigFromOptions(o), /kernel table 201;/);
  assert.throws(() => birdConfigFromOptions({ ...o, keepaliveTime: '2' }), /--keepalive-time: expected an integer 1-1/);
  assert.throws(() => birdConfigFromOptions({ ...o, neighbor: ['router'] }), /--neighbor: expected an address/);
  const b = birdConfigFromOptions({ ...o, bfd: '100', errorWait: '1,5' });
  assert.match(b, /protocol bfd lvs_bfd \{ interface "\*" \{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; \}; \}/);
  assert.match(b, /connect retry time 1; bfd on;\n  error wait time 1, 5;/);
  assert.doesNotMatch(birdConfigFromOptions(o), /bfd|error wait/);
  assert.throws(() => birdConfigFromOptions({ ...o, errorWait: '5,1' }), /--error-wait 5,1: the maximum is below the minimum/);
  assert.throws(() => birdConfigFromOptions({ ...o, bfd: '1' }), /--bfd: expected an integer 10-10000/);
});
