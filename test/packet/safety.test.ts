// Failure behaviour the README promises: a foreign XDP program is not replaced without --force,
// a user without privileges is told what is missing, a full disk changes nothing, and a full
// connection table keeps scheduling by the consistent table (so evicted flows land where they were).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { repoRoot } from '../lib/paths.js';
import { acceptTestRunFrames } from '../lib/accept.js';
import { CliNamespace, type CliOptions, type CliRun } from '../lib/cli-ns.js';
import { openPinned, closeFd, testRun } from '../../src/native/index.js';

/** Programs on an interface in the test namespace (ip -j link: xdp prog id or none). */
function xdpProgOn(ifname: string): number | undefined {
  const r = spawnSync('ip', ['-n', NS, '-j', '-d', 'link', 'show', ifname], { encoding: 'utf8' });
  const l = (JSON.parse(r.stdout) as { xdp?: { prog?: { id: number } } }[])[0];
  return l?.xdp?.prog?.id;
}

const ROOT = repoRoot();
const L = new CliNamespace('lvss');
const { ns: NS, pin: PIN, state: STATE } = L;
const FOREIGN_PIN = `${PIN}-foreign`;

const cli = (args: string[], o: CliOptions = {}): CliRun => L.run(args, o);
const ok = (args: string[], o: CliOptions = {}): string => L.ok(args, o);

before(() => {
  L.create();
  L.onCleanup(() => rmSync(FOREIGN_PIN, { force: true }));
  L.onCleanup(() => spawnSync('umount', [STATE]));
  for (const [a, b] of [['lvss0', 'lvss1'], ['lvss2', 'lvss3']]) {
    L.ip('link', 'add', a!, 'type', 'veth', 'peer', 'name', b!);
    L.ip('link', 'set', a!, 'up');
    L.ip('link', 'set', b!, 'up');
  }
});

after(() => L.cleanup());

test('a foreign XDP program is refused without --force and replaced with it', () => {
  const r0 = spawnSync('nsenter', [`--net=/run/netns/${NS}`, process.execPath, `${ROOT}/dist/test/lib/foreign-xdp.js`, 'lvss2', FOREIGN_PIN], { encoding: 'utf8' });
  assert.equal(r0.status, 0, r0.stderr);
  const r = cli(['attach', 'lvss2']);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /lvss2 already has an XDP program attached \(id \d+\) that is not this director's/);
  assert.match(r.stderr, /--force/);
  assert.equal(existsSync(FOREIGN_PIN), true);
  ok(['attach', 'lvss2', '--force']);
  const st = JSON.parse(ok(['status', '--json'])) as { interfaces: { name: string; linked: boolean }[] };
  assert.deepEqual(st.interfaces.map((i) => [i.name, i.linked]), [['lvss2', true]]);
  ok(['detach', 'lvss2']);
});

test('without privileges: each command says what is missing (exit 3)', () => {
  ok(['attach', 'lvss0', '--preset', 'small']);
  for (const args of [['-L', '-n'], ['status'], ['-A', '-t', '10.79.0.1:80', '-s', 'mh'], ['attach', 'lvss2'], ['stats']]) {
    const r = cli(args, { user: true });
    assert.equal(r.code, 3, `${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, /hint: run as root/, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n {4}at /, 'no stack trace');
  }
  ok(['detach']);
});

test('a broken state never blocks the way out: detach works with a corrupt snapshot or a pin removed by hand', () => {
  // Corrupt snapshot: every command refuses (exit 4) and points at detach; detach then works
  // from the pinned links alone, and attach starts afresh.
  ok(['attach', 'lvss0', '--preset', 'small']);
  ok(['attach', 'lvss2']);
  assert.ok(xdpProgOn('lvss0') !== undefined && xdpProgOn('lvss2') !== undefined);
  writeFileSync(`${STATE}/state.msgpack`, 'garbage\u0000\u00c1');
  for (const args of [['-L', '-n'], ['status'], ['attach', 'lvss0']]) {
    const r = cli(args);
    assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /corrupt/);
    assert.match(r.stderr, /lvs-xdp detach/);
  }
  let r = cli(['detach', 'lvss2']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /the pinned state cannot be used/);
  assert.equal(xdpProgOn('lvss2'), undefined, 'lvss2 detached');
  assert.notEqual(xdpProgOn('lvss0'), undefined, 'lvss0 untouched');
  r = cli(['detach']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /detached from lvss0; removed the pinned state and snapshot/);
  assert.equal(xdpProgOn('lvss0'), undefined);
  assert.equal(existsSync(PIN), false);
  assert.equal(existsSync(`${STATE}/state.msgpack`), false);

  // A pinned map removed behind lvs-xdp's back.
  ok(['attach', 'lvss0', '--preset', 'small']);
  rmSync(`${PIN}/lvs_frags`);
  r = cli(['-L', '-n']);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /pinned map .*lvs_frags is missing/);
  r = cli(['detach']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(xdpProgOn('lvss0'), undefined);
  assert.equal(existsSync(PIN), false);
  ok(['attach', 'lvss0', '--preset', 'small']);
  ok(['detach']);
});

test('attach -f is all or nothing; sizes given to a later attach are reported as ignored', () => {
  // 10.79.9.9 has no route and no neighbour here: its MAC cannot be resolved.
  const file = `${STATE}-bad.yaml`;
  L.onCleanup(() => rmSync(file, { force: true }));
  writeFileSync(file, 'services:\n  - { vip: 10.79.0.5, port: 80, realservers: [{ address: 10.79.9.9 }] }\n');
  let r = cli(['attach', 'lvss0', '-f', file]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /10\.79\.9\.9/);
  assert.match(r.stderr, /lvss0 not attached/);
  assert.equal(xdpProgOn('lvss0'), undefined, 'nothing left attached');
  assert.equal(existsSync(PIN), false, 'nothing left pinned');
  // The same on a running director: only the new interface is rolled back.
  ok(['attach', 'lvss0', '--preset', 'small']);
  ok(['-A', '-t', '10.79.0.6:80', '-s', 'mh']);
  r = cli(['attach', 'lvss2', '-f', file]);
  assert.notEqual(r.code, 0);
  assert.equal(xdpProgOn('lvss2'), undefined);
  assert.notEqual(xdpProgOn('lvss0'), undefined);
  assert.match(ok(['-S', '-n']), /^-A -t 10\.79\.0\.6:80 -s mh$/m);
  r = cli(['attach', 'lvss2', '--max-conns', '1000']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: the director was already loaded: --max-conns 1000 ignored \(it has 16384\); sizes are set by the first attach/);
  ok(['detach']);
});

test('a full disk under the snapshot: the change fails clearly and nothing changes', () => {
  mkdirSync(STATE, { recursive: true, mode: 0o700 });
  assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', STATE]).status, 0);
  try {
    ok(['attach', 'lvss0', '--preset', 'small']);
    ok(['-A', '-t', '10.79.0.1:80', '-s', 'mh']);
    const saved = ok(['-S', '-n']);
    // Fill what is left.
    spawnSync('dd', ['if=/dev/zero', `of=${STATE}/filler`, 'bs=4k', 'count=100'], { stdio: 'ignore' });
    const r = cli(['-a', '-t', '10.79.0.1:80', '-r', '10.79.0.11', '-g', '--mac', '02:00:00:00:03:11']);
    assert.equal(r.code, 4, r.stderr);
    // Whichever write hits the full disk first (the lock or the pending record), before any map.
    assert.match(r.stderr, /could not (write the state snapshot|create the lock) .*ENOSPC/);
    assert.match(r.stderr, /file system is full/);
    rmSync(`${STATE}/filler`);
    assert.equal(ok(['-S', '-n']), saved);
    const prog = openPinned(`${PIN}/prog_lvs_director`);
    try {
      // The realserver was not added: the service still has none.
      acceptTestRunFrames(PIN);
      const t = testRun(prog, clientPacket('198.51.100.1', '10.79.0.1', { proto: 'tcp', sport: 1000, dport: 80, flags: TCP.SYN }), { dataSizeOut: 2048 });
      assert.equal(t.retval, XDP.DROP);
    } finally {
      closeFd(prog);
    }
    ok(['-a', '-t', '10.79.0.1:80', '-r', '10.79.0.11', '-g', '--mac', '02:00:00:00:03:11']);
    ok(['detach']);
  } finally {
    spawnSync('umount', [STATE]);
  }
});

test('a full connection table: flows are still scheduled by the consistent table; fill is shown', () => {
  ok(['attach', 'lvss0', '--max-conns', '256']);
  ok(['-R'], { input: ['-A -t 10.79.0.2:80 -s mh', ...[11, 12, 13].map((x) => `-a -t 10.79.0.2:80 -r 10.79.0.${x} -g --mac 02:00:00:00:03:${x}`)].join('\n') });
  const prog = openPinned(`${PIN}/prog_lvs_director`);
  const send = (i: number, flags: number) => {
    acceptTestRunFrames(PIN);
    const t = testRun(prog, clientPacket(`198.51.${100 + (i >> 8)}.${i & 255}`, '10.79.0.2', { proto: 'tcp', sport: 5000 + (i % 1000), dport: 80, flags }), { dataSizeOut: 2048 });
    assert.equal(t.retval, XDP.TX);
    return t.data[5]!;
  };
  try {
    // Each flow completes its handshake: a SYN waits as SYN_RECV outside the table (lvs_synrecv),
    // its ACK enters it.
    const first = Array.from({ length: 100 }, (_, i) => {
      const m = send(i, TCP.SYN);
      assert.equal(send(i, TCP.ACK), m);
      return m;
    });
    // 4000 more flows: far more than the table holds.
    for (let i = 100; i < 4100; i++) { send(i, TCP.SYN); send(i, TCP.ACK); }
    // The first flows were evicted long ago, yet their packets reach the same realserver.
    first.forEach((m, i) => assert.equal(send(i, TCP.ACK | TCP.PSH), m, `flow ${i}`));
    const st = JSON.parse(ok(['status', '--json'])) as { connections: { entries: number; max: number; evicted: number } };
    assert.equal(st.connections.max, 256);
    assert.ok(st.connections.entries > 0 && st.connections.entries <= 512, `entries ${st.connections.entries}`);
    const stats = JSON.parse(ok(['stats', '--json', '-i', '0'])) as { counters: Record<string, { value: number }>; connections: { entries: number } };
    // The kernel's LRU is approximate: a first flow's entry can outlive 4,000 younger ones when it
    // sits on another CPU's pending list, and then its ACK is a hit. A first flow's ACK that
    // missed is a stray (no SYN): forwarded by the table, kept in lvs_strays, not a new entry. So:
    // 4,100 handshakes entered; the table holds `entries`; the rest was evicted. (Each handshake's
    // ACK found its SYN_RECV connection: a hit too.)
    const hits = stats.counters.conn_hit!.value - 4100;
    assert.ok(hits >= 0 && hits <= 100, `hits ${hits}`);
    assert.equal(stats.counters.conn_expired!.value, 0, 'no entry of a 2-second test expired');
    assert.equal(stats.counters.conn_new!.value, 4100, 'every new flow counted');
    assert.equal(stats.counters.conn_synrecv_entered!.value, 4100, 'every handshake entered');
    assert.equal(stats.counters.conn_stray!.value, 100 - hits, 'every missed ACK a stray');
    assert.equal(st.connections.evicted, 4100 - st.connections.entries);
    assert.match(ok(['status']), /conn table {2}\d+ \/ 256 entries/);
  } finally {
    closeFd(prog);
  }
  ok(['detach']);
});


