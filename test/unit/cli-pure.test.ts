// The CLI's pure parts: ipvsadm argv handling, file-kind detection, the snapshot codec, and the
// stats view (rates from two readings) with its text layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpvsadmArgv, isIpvsadmInvocation } from '../../src/cli/ipvsadm.js';
import { looksLikeIpvsadm, desiredConfig } from '../../src/cli/common.js';
import { statsView, formatStatsView } from '../../src/cli/stats.js';
import { formatStatus } from '../../src/cli/status.js';
import { encodeSnapshot, decodeSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type Snapshot } from '../../src/director/snapshot.js';
import { emptyAllocation } from '../../src/dataplane/compile.js';
import { DEFAULT_SIZES, DEFAULT_KNOBS } from '../../src/dataplane/loader.js';
import { StateError, ConfigError } from '../../src/errors.js';
import type { StatsSample } from '../../src/director/director.js';

test('ipvsadm invocations are told apart from subcommands', () => {
  assert.equal(isIpvsadmInvocation(['-A', '-t', '1.2.3.4:80', '-s', 'mh']), true);
  assert.equal(isIpvsadmInvocation(['-Ln']), true);
  assert.equal(isIpvsadmInvocation(['--list', '--numeric']), true);
  assert.equal(isIpvsadmInvocation(['status']), false);
  assert.equal(isIpvsadmInvocation(['attach', 'eth0']), false);
  assert.equal(isIpvsadmInvocation(['-L', '--help']), false);
  // Subcommands whose options look like ipvsadm's are not ipvsadm.
  assert.equal(isIpvsadmInvocation(['run', '-f', 'x.yaml', '--listen', '127.0.0.1:9469']), false);
  assert.equal(isIpvsadmInvocation(['top', '-d', '2']), false);
  assert.equal(isIpvsadmInvocation(['--pin-dir', '/sys/fs/bpf/x', '-L', '-n']), true);
  assert.equal(isIpvsadmInvocation(['--listing']), false);
});

test('listing options: combined short flags, service filter, state options', () => {
  let p = parseIpvsadmArgv(['-Ln', '--stats', '--exact']);
  assert.equal(p.action, 'list');
  assert.equal(p.stats, true);
  assert.equal(p.exact, true);
  p = parseIpvsadmArgv(['-Lnc']);
  assert.equal(p.action, 'list');
  assert.equal(p.connections, true);
  p = parseIpvsadmArgv(['-L', '-n', '-t', '[2001:db8::1]:443', '--pin-dir', '/sys/fs/bpf/x', '--json']);
  assert.deepEqual(p.service, { protocol: 'tcp', vip: '2001:db8::1', port: 443 });
  assert.equal(p.state.pinDir, '/sys/fs/bpf/x');
  assert.equal(p.json, true);
  assert.equal(parseIpvsadmArgv(['-S', '-n']).action, 'save');
  assert.equal(parseIpvsadmArgv(['--restore']).action, 'restore');
  assert.equal(parseIpvsadmArgv(['-Z']).action, 'zero');
  assert.equal(parseIpvsadmArgv(['-c']).action, 'list');
});

test('rule argv keeps the rule words and strips our options', () => {
  const p = parseIpvsadmArgv(['--state-dir=/tmp/s', '-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-g', '-w', '3', '--json']);
  assert.equal(p.action, 'rule');
  assert.deepEqual(p.rule, ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-g', '-w', '3']);
  assert.equal(p.state.stateDir, '/tmp/s');
  assert.equal(p.json, true);
});

test('bundles, --timeout, --set, -v and the no-op sort options', () => {
  assert.equal(isIpvsadmInvocation(['-At', '1.2.3.4:80', '-s', 'mh']), true);
  assert.equal(isIpvsadmInvocation(['-Lnt', '1.2.3.4:80']), true);
  assert.equal(isIpvsadmInvocation(['--set', '900', '120', '300']), true);
  assert.equal(isIpvsadmInvocation(['-v']), true);
  assert.equal(isIpvsadmInvocation(['-V']), false, 'commander\'s --version');
  let p = parseIpvsadmArgv(['-Lnt', '10.0.0.1:80', '--sort']);
  assert.equal(p.action, 'list');
  assert.deepEqual(p.service, { protocol: 'tcp', vip: '10.0.0.1', port: 80 });
  p = parseIpvsadmArgv(['-L', '-n', '-t10.0.0.1:80', '--nosort']);
  assert.deepEqual(p.service, { protocol: 'tcp', vip: '10.0.0.1', port: 80 });
  assert.equal(parseIpvsadmArgv(['-L', '--timeout']).action, 'timeout');
  assert.equal(parseIpvsadmArgv(['--timeout', '-L', '-n']).action, 'timeout');
  p = parseIpvsadmArgv(['--set', '900', '0', '30']);
  assert.equal(p.action, 'set');
  assert.deepEqual(p.timeouts, [900, 0, 30]);
  assert.throws(() => parseIpvsadmArgv(['--set', '900', '120']), /--set: needs three timeouts/);
  assert.throws(() => parseIpvsadmArgv(['--set', '900', 'x', '1']), /--set: needs three timeouts/);
  assert.throws(() => parseIpvsadmArgv(['--set', '900', '1', '99999999999']), /udp timeout 99999999999 out of range/);
  assert.equal(parseIpvsadmArgv(['-v']).action, 'version');
  assert.throws(() => parseIpvsadmArgv(['-L', '-c', '--stats']), /-c: options conflict/);
  assert.throws(() => parseIpvsadmArgv(['-Lc', '--rate']), /-c: options conflict/);
  assert.throws(() => parseIpvsadmArgv(['-L', '-S']), /only one command/);
});

test('listing errors name the option', () => {
  assert.throws(() => parseIpvsadmArgv(['-L', '--bogus']), (e: unknown) => e instanceof ConfigError && /--bogus/.test(e.message));
  assert.throws(() => parseIpvsadmArgv(['-L', '-S']), ConfigError);
  assert.throws(() => parseIpvsadmArgv(['-L', '-t', '10.0.0.1:99999']), /port 99999 out of range/);
  assert.throws(() => parseIpvsadmArgv(['-L', '--pin-dir']), /needs a value/);
});

test('a rules file keeps the running settings (it cannot express them); a YAML file is the whole configuration', () => {
  const running = { services: [], settings: { hashSeed: 7, timeouts: { tcp: 1000 } } };
  const fromFile = { services: [] };
  assert.deepEqual(desiredConfig({ config: fromFile, rules: true }, running), { services: [], settings: running.settings });
  assert.deepEqual(desiredConfig({ config: fromFile, rules: false }, running), fromFile);
  assert.deepEqual(desiredConfig({ config: fromFile, rules: true }, { services: [] }), fromFile);
});

test('file kind: ipvsadm rules versus YAML/JSON', () => {
  assert.equal(looksLikeIpvsadm('# saved\n\n-A -t 10.0.0.1:80 -s mh\n'), true);
  assert.equal(looksLikeIpvsadm('ipvsadm -A -t 10.0.0.1:80 -s mh\n'), true);
  assert.equal(looksLikeIpvsadm('services:\n  - vip: 10.0.0.1\n'), false);
  assert.equal(looksLikeIpvsadm('{"services": []}'), false);
  assert.equal(looksLikeIpvsadm(''), false);
});

function snapshot(): Snapshot {
  return {
    format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, tool: '0.1.0', createdAt: 'x', updatedAt: 'y',
    sizes: DEFAULT_SIZES, knobs: DEFAULT_KNOBS, progId: 7, interfaces: { eth0: { ifindex: 2, mode: 'native', attachedAt: 'z' } },
    applied: {
      config: { services: [{ protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'mh', flags: [], ops: false, realservers: [{ address: '10.0.0.2', port: 80, weight: 1, method: 'dr' }] }] },
      allocation: { ...emptyAllocation(), services: { 'tcp 10.0.0.1:80': 0 } }, l2: { 'tcp 10.0.0.1:80/10.0.0.2': { mac: '02:00:00:00:00:02' } },
      digests: { 'tcp 10.0.0.1:80': 'abc' }, reals: {},
    },
  };
}

test('snapshot: round trip; corrupt, foreign, newer and incomplete files are StateErrors naming the file', () => {
  const s = snapshot();
  assert.deepEqual(decodeSnapshot(encodeSnapshot(s), 'f'), s);
  const bad = (buf: Buffer, re: RegExp) => assert.throws(() => decodeSnapshot(buf, '/run/x/state.msgpack'), (e: unknown) => e instanceof StateError && re.test(e.message) && e.message.includes('/run/x/state.msgpack'));
  bad(Buffer.from([0xc1, 0xc1, 0xc1]), /is corrupt/);
  bad(encodeSnapshot(s).subarray(0, 20), /is corrupt|incomplete|not an lvs-xdp/);
  bad(Buffer.from([0x81, 0xa1, 0x61, 0x01]), /is not an lvs-xdp state snapshot/);
  bad(encodeSnapshot({ ...s, version: SNAPSHOT_VERSION + 1 }), /has version 2, this lvs-xdp reads up to 1/);
  const partial = { ...s } as Partial<Snapshot>;
  delete partial.applied;
  bad(encodeSnapshot(partial as Snapshot), /incomplete/);
});

function sample(at: bigint, pk: bigint, by: bigint, conns: bigint): StatsSample {
  return {
    at,
    services: [{
      id: 'tcp 10.0.0.1:80', packets: pk, bytes: by, conns,
      realservers: [{ address: '10.0.0.2', port: 80, weight: 1, packets: pk, bytes: by, conns, active: 3, inactive: 1 }],
    }],
    counters: { fwd_dr: pk, pass_not_vip: 0n },
    connections: { entries: 4, max: 100, evicted: 2 },
  };
}

test('stats view: rates are deltas over the measured interval', () => {
  const v = statsView(sample(3_000_000_000n, 3000n, 300000n, 30n), sample(1_000_000_000n, 1000n, 100000n, 10n));
  assert.equal(v.seconds, 2);
  assert.deepEqual(v.services[0]!.rates, { pps: 1000, bps: 100000, cps: 10 });
  assert.deepEqual(v.services[0]!.realservers[0]!.rates, { pps: 1000, bps: 100000, cps: 10 });
  assert.equal(v.counters.fwd_dr!.rate, 1000);
  // Without a previous reading (or after a counter reset) rates are 0, never negative.
  assert.equal(statsView(sample(1n, 5n, 5n, 5n)).services[0]!.rates.pps, 0);
  assert.equal(statsView(sample(2_000_000_000n, 5n, 5n, 5n), sample(1_000_000_000n, 50n, 50n, 50n)).services[0]!.rates.pps, 0);
});

test('stats text: one row per service and realserver, zero counters hidden unless asked', () => {
  const text = formatStatsView(statsView(sample(2_000_000_000n, 20000n, 2_000_000n, 30n), sample(1_000_000_000n, 10000n, 1_000_000n, 10n)));
  const lines = text.split('\n');
  assert.match(lines[0]!, /packets +bytes +conns +active +inact +pps +bit\/s +conn\/s/);
  assert.match(lines[1]!, /^tcp 10\.0\.0\.1:80 +20\.0K +2\.0M +30 +10\.0K +8\.0M +20$/);
  assert.match(lines[2]!, /^ {2}-> 10\.0\.0\.2:80 w1 +20\.0K +2\.0M +30 +3 +1 +10\.0K +8\.0M +20$/);
  assert.match(text, /connection table: 4 \/ 100 entries \(4\.0%\), 2 evicted since load/);
  assert.match(text, /fwd_dr +fwd +20000 +10\.0K/);
  assert.doesNotMatch(text, /pass_not_vip/);
  assert.match(formatStatsView(statsView(sample(1n, 1n, 1n, 1n)), true), /pass_not_vip/);
});

test('status text says not attached, or lists interfaces and fill levels', () => {
  assert.match(formatStatus({ attached: false, pinDir: '/sys/fs/bpf/lvs-xdp', stateDir: '/run/lvs-xdp/lvs-xdp', interfaces: [], services: 0, realservers: 0, version: '0.1.0' }), /not attached/);
  const t = formatStatus({
    attached: true, pinDir: '/p', stateDir: '/s', version: '0.1.0', services: 2, realservers: 5,
    interfaces: [{ name: 'eth0', ifindex: 2, mode: 'native', attachedAt: 't', linked: true }],
    connections: { entries: 50, max: 200, evicted: 7 }, memoryBytes: 3 * 1048576, sizes: DEFAULT_SIZES, knobs: DEFAULT_KNOBS,
  });
  assert.match(t, /interface +eth0 \(ifindex 2\) native/);
  assert.match(t, /conn table +50 \/ 200 entries \(25\.0%\), 7 evicted since load/);
  assert.match(t, /memory +3\.0 MiB/);
});
