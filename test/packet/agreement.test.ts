// Two directors, each a pinned CLI director (pin and state directories of its own), given the
// same rules through different histories (one `apply -f`; the other ipvsadm commands in another
// order, with a realserver that comes and goes and a weight changed back): `config --digest`
// and `status` show the same digest, and 200 new flows go to the same realservers on both.
// A director whose live maps drifted (a table slot written behind its back) shows another
// digest although its snapshot is unchanged; a real difference (a weight) shows too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { CliNamespace } from '../lib/cli-ns.js';
import { BpfMap, openPinned, closeFd, testRun } from '../../src/native/index.js';
import { acceptTestRunFrames } from '../lib/accept.js';
import { decode, SVC } from '../../src/abi/layout.js';
import { serviceKey } from '../../src/dataplane/compile.js';
import type { TableDigest } from '../../src/director/digest.js';

const A = new CliNamespace('lvsag');
const B = new CliNamespace('lvsah');
const VIP = '10.81.0.100';
const WEB = `${VIP}:80`;
const TLS = `${VIP}:443`;
const macOf = (last: number) => `02:00:00:00:04:${String(last).padStart(2, '0')}`;
const real = (svc: string, r: number, w = 1) => `-a -t ${svc} -r 10.81.0.${r} -g -w ${w} --mac ${macOf(r)}`;
const progs = new Map<CliNamespace, number>();

/** Where a new connection (SYN) from client:sport goes: the realserver's last MAC byte. */
function send(d: CliNamespace, client: string, sport: number, dport: number): string {
  acceptTestRunFrames(d.pin);
  const r = testRun(progs.get(d)!, clientPacket(client, VIP, { proto: 'tcp', sport, dport, flags: TCP.SYN }), { dataSizeOut: 2048 });
  if (r.retval === XDP.TX) return String(parseInt(r.data.subarray(5, 6).toString('hex'), 10));
  return r.retval === XDP.DROP ? 'drop' : r.retval === XDP.PASS ? 'pass' : `action ${r.retval}`;
}

/** 200 new flows (100 per service, source ports of round `round`): realserver of each. Rounds
 *  use other source ports: a SYN of a flow the director already has would follow its entry. */
function flows(d: CliNamespace, round: number): string[] {
  return Array.from({ length: 200 }, (_, i) => send(d, `198.51.${100 + (i % 3)}.${1 + (i % 211)}`, 10000 + round * 200 + i, i % 2 ? 443 : 80));
}

const digest = (d: CliNamespace): TableDigest => JSON.parse(d.ok(['config', '--digest', '--json'])) as TableDigest;

before(() => {
  for (const [d, dev] of [[A, 'lvsag0'], [B, 'lvsah0']] as const) {
    d.create();
    d.ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev.slice(0, -1)}1`);
    d.ip('link', 'set', dev, 'up');
    d.ip('link', 'set', `${dev.slice(0, -1)}1`, 'up');
    d.ok(['attach', dev, '--preset', 'small']);
    const prog = openPinned(`${d.pin}/prog_lvs_director`);
    progs.set(d, prog);
    d.onCleanup(() => closeFd(prog));
  }
  // A: the whole configuration in one file.
  const file = `${A.state}-agree.yaml`;
  writeFileSync(file, [
    'settings:', '  hash-seed: 424242', 'services:',
    `  - { vip: ${VIP}, port: 80, protocol: tcp, scheduler: mh,`, '      realservers: [',
    ...[11, 12, 13, 14].map((r) => `        { address: 10.81.0.${r}, method: dr, weight: ${r === 14 ? 2 : 1}, mac: "${macOf(r)}" },`), '      ] }',
    `  - { vip: ${VIP}, port: 443, protocol: tcp, scheduler: sh, persistence: 300,`, '      realservers: [',
    ...[13, 11, 12].map((r) => `        { address: 10.81.0.${r}, method: dr, weight: 1, mac: "${macOf(r)}" },`), '      ] }',
  ].join('\n') + '\n');
  try {
    A.ok(['apply', '-f', file]);
    // B: the hash seed first, then ipvsadm commands in another order, with detours.
    writeFileSync(file, 'settings:\n  hash-seed: 424242\nservices: []\n');
    B.ok(['apply', '-f', file]);
  } finally {
    rmSync(file, { force: true });
  }
  B.ok(['-R'], { input: [`-A -t ${TLS} -s sh -p 300`, real(TLS, 12), `-A -t ${WEB} -s mh`, real(WEB, 14, 5), real(WEB, 19), real(WEB, 12)].join('\n') });
  B.ok(['-a', '-t', TLS, '-r', '10.81.0.11', '-g', '-w', '1', '--mac', macOf(11)]);
  B.ok(['-d', '-t', WEB, '-r', '10.81.0.19']);
  B.ok(['-a', '-t', WEB, '-r', '10.81.0.13', '-g', '-w', '1', '--mac', macOf(13)]);
  B.ok(['-e', '-t', WEB, '-r', '10.81.0.14', '-g', '-w', '2']);
  B.ok(['-a', '-t', TLS, '-r', '10.81.0.13', '-g', '-w', '1', '--mac', macOf(13)]);
  B.ok(['-a', '-t', WEB, '-r', '10.81.0.11', '-g', '-w', '1', '--mac', macOf(11)]);
});

after(() => {
  A.cleanup();
  B.cleanup();
});

test('the same rules in different orders: equal digests, in config --digest and status, and the same realserver for 200 flows', () => {
  const da = digest(A);
  const db = digest(B);
  assert.equal(da.hashSeed, 424242);
  assert.equal(da.services.length, 2);
  assert.deepEqual(db, da);
  assert.equal((JSON.parse(A.ok(['status', '--json'])) as { tableDigest: string }).tableDigest, da.digest);
  assert.equal((JSON.parse(B.ok(['status', '--json'])) as { tableDigest: string }).tableDigest, da.digest);
  assert.match(A.ok(['config', '--digest']), new RegExp(`^tables ${da.digest} \\(hash seed 424242, 2 services\\)`));
  const fa = flows(A, 0);
  const fb = flows(B, 0);
  assert.deepEqual(fb, fa);
  assert.deepEqual(new Set(fa.filter((_, i) => i % 2 === 0)), new Set(['11', '12', '13', '14']), 'every web realserver takes flows');
  assert.deepEqual(new Set(fa.filter((_, i) => i % 2 === 1)), new Set(['11', '12', '13']), 'every tls realserver takes flows');
});

test('a weight that differs shows in the digest (that service only) and moves flows; set back, both agree again', () => {
  const before = digest(A);
  B.ok(['-e', '-t', WEB, '-r', '10.81.0.14', '-g', '-w', '1']);
  const changed = digest(B);
  assert.notEqual(changed.digest, before.digest);
  assert.notEqual(changed.services.find((s) => s.service === `tcp ${WEB}`)!.digest, before.services.find((s) => s.service === `tcp ${WEB}`)!.digest);
  assert.equal(changed.services.find((s) => s.service === `tcp ${TLS}`)!.digest, before.services.find((s) => s.service === `tcp ${TLS}`)!.digest);
  assert.notDeepEqual(flows(B, 1), flows(A, 1));
  B.ok(['-e', '-t', WEB, '-r', '10.81.0.14', '-g', '-w', '2']);
  assert.deepEqual(digest(B), before);
  assert.deepEqual(flows(B, 2), flows(A, 2));
});

test('maps that drifted from the snapshot show another digest (read from the live tables)', () => {
  const before = digest(A);
  const config = A.ok(['config']);
  const services = BpfMap.fromPin(`${A.pin}/lvs_services`);
  const tables = BpfMap.fromPin(`${A.pin}/lvs_tables`);
  const key = serviceKey({ protocol: 'tcp', vip: VIP, port: 80 });
  const slot = decode(SVC, services.lookup(key)!).table_slot as number;
  const inner = BpfMap.fromId(tables.lookup(Buffer.from(Uint32Array.of(slot).buffer))!.readUInt32LE(0));
  const k0 = Buffer.alloc(4);
  const was = inner.lookup(k0)!;
  try {
    // Slot 0 names another realserver of the service than the one it named.
    const other = inner.entries().values.find((v) => !v.equals(was))!;
    inner.update(k0, other);
    assert.equal(A.ok(['config']), config, 'the snapshot does not know');
    const drifted = digest(A);
    assert.notEqual(drifted.digest, before.digest);
    assert.notEqual(drifted.digest, digest(B).digest);
  } finally {
    inner.update(k0, was);
    inner.close();
    tables.close();
    services.close();
  }
  assert.deepEqual(digest(A), before);
});
